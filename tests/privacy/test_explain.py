"""Explanations agree with the filter and say why for every field."""

from __future__ import annotations

import random
from datetime import timedelta

from dtim.privacy import Destination, PrivacyFilter, PrivacyLevel, SeededNoise, WithholdReason
from tests.privacy.conftest import NOW, MakeFilter, MakeIndicator, policy

PEER = Destination.peer("peer-a")


def test_explains_a_shared_indicator(open_privacy: PrivacyFilter, make: MakeIndicator) -> None:
    indicator = make(
        tags=["mirai", "user=bob"],
        custom_fields={"family": "mirai", "secret": "x"},
        sources=["ufw"],
    )
    explanation = open_privacy.explain(indicator, PEER, valid_until=NOW + timedelta(days=1))
    shared = open_privacy.share(indicator, PEER, valid_until=NOW + timedelta(days=1))
    assert shared is not None
    assert explanation.shared
    assert explanation.output == shared.to_json()
    assert explanation.level is PrivacyLevel.OPEN
    assert explanation.destination == "peer:peer-a"
    fields = {item.name: item for item in explanation.fields}
    assert set(fields) == {*indicator.to_json(), "valid_until"}
    kept = {name for name, item in fields.items() if item.kept}
    assert kept == set(shared.to_json())
    assert fields["first_seen"].reason == "floored to the hour"
    assert fields["first_seen"].value == "2026-03-01T12:00:00.000Z"
    assert fields["sightings"].reason == "the lower bound of its bucket"
    assert "attribution" in fields["sources"].reason
    assert fields["sources"].value == ["ufw"]  # the local value, for the operator
    assert {t.name: t.kept for t in explanation.tags} == {"mirai": True, "user=bob": False}
    assert {c.name: c.kept for c in explanation.custom_fields} == {"family": True, "secret": False}
    payload = explanation.to_json()
    assert payload["shared"] is True
    assert payload["reason"] is None
    assert payload["warninglist"] is None
    assert payload["indicator"] == {"id": indicator.id, "type": "ipv4", "value": "45.33.32.156"}


def test_explains_a_withheld_indicator(privacy: PrivacyFilter, make: MakeIndicator) -> None:
    explanation = privacy.explain(
        make("10.0.0.1", tags=["mirai"], custom_fields={"family": "x"}), PEER
    )
    assert not explanation.shared
    assert explanation.output is None
    assert explanation.reason is WithholdReason.WARNINGLIST
    assert explanation.warninglist is not None
    assert explanation.warninglist.list_name == "rfc1918"
    assert all(not item.kept for item in explanation.fields)
    assert {item.reason for item in explanation.fields if item.name == "value"} == {
        "the indicator is withheld"
    }
    assert [t.reason for t in explanation.tags] == ["tags leave only at level open"]
    assert [c.reason for c in explanation.custom_fields] == [
        "custom fields leave only at level open"
    ]
    payload = explanation.to_json()
    assert payload["reason"] == "warninglist"
    assert payload["warninglist"] == explanation.warninglist.to_json()


def test_reports_a_warninglist_even_when_marking_stops_it_first(
    privacy: PrivacyFilter, make: MakeIndicator
) -> None:
    explanation = privacy.explain(make("8.8.8.8", scope="local"), PEER)
    assert explanation.reason is WithholdReason.SCOPE_LOCAL
    assert explanation.warninglist is not None
    assert explanation.warninglist.list_name == "public-dns"


def test_level_words(make_filter: MakeFilter, make: MakeIndicator) -> None:
    strict = make_filter(level=PrivacyLevel.STRICT).explain(make(), PEER)
    fields = {item.name: item for item in strict.fields}
    assert fields["confidence"].reason == "strict does not share confidence"
    assert fields["tlp"].kept
    moderate = make_filter().explain(make(), PEER)
    assert {item.name: item.reason for item in moderate.fields}[
        "confidence"
    ] == "moderate and open share confidence"
    noisy = PrivacyFilter(
        policy(level=PrivacyLevel.OPEN, dp_epsilon=1.0, sightings_buckets=()),
        noise=SeededNoise(random.Random(1)),
    ).explain(make(), PEER)
    assert {item.name: item.reason for item in noisy.fields}[
        "sightings"
    ] == "Laplace noise, epsilon 1"
    both = make_filter(level=PrivacyLevel.OPEN, dp_epsilon=0.5).explain(make(), PEER)
    assert {item.name: item.reason for item in both.fields}["sightings"] == (
        "Laplace noise, epsilon 0.5, then the lower bound of its bucket"
    )
