"""The filter: levels, field sets, overrides, stripping, timing, noise, both directions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from dtim.model import Evidence, Scope, Tlp
from dtim.privacy import (
    LEVEL_FIELDS,
    Destination,
    PrivacyFilter,
    PrivacyLevel,
    SeededNoise,
    TimestampPrecision,
    WithholdReason,
    accept_from_peer,
    explain,
    filter_for,
    sanitize,
)
from tests.privacy.conftest import NOW, MakeFilter, MakeIndicator, policy

PEER = Destination.peer("peer-a", ["team-x"])


@pytest.mark.parametrize("level", list(PrivacyLevel))
def test_each_level_has_exactly_its_fields(
    make_filter: MakeFilter, make: MakeIndicator, level: PrivacyLevel
) -> None:
    privacy = make_filter(level=level)
    indicator = make(
        tags=["mirai"],
        custom_fields={"family": "mirai", "secret_field": "x"},
        sources=["ufw"],
        recipients=["peer-a"],
        sightings=13,
    )
    shared = privacy.share(indicator, PEER, valid_until=NOW + timedelta(days=2))
    assert shared is not None
    payload = shared.to_json()
    assert tuple(payload) == LEVEL_FIELDS[level]
    assert payload["id"] == indicator.id
    assert payload["value"] == "45.33.32.156"
    assert payload["tlp"] == "green"
    if level is not PrivacyLevel.STRICT:
        assert payload["confidence"] == 50
        assert payload["first_seen"] == "2026-03-01T12:00:00.000Z"
        assert payload["last_seen"] == "2026-03-01T12:00:00.000Z"
        assert payload["valid_until"] == "2026-03-03T12:00:00.000Z"
    if level is PrivacyLevel.OPEN:
        assert payload["tags"] == ["mirai"]
        assert payload["sightings"] == 10
        assert payload["custom_fields"] == {"family": "mirai"}


def test_valid_until_is_null_when_unknown(privacy: PrivacyFilter, make: MakeIndicator) -> None:
    shared = privacy.share(make(), PEER)
    assert shared is not None
    assert shared.to_json()["valid_until"] is None


def test_level_overrides(make_filter: MakeFilter, make: MakeIndicator) -> None:
    privacy = make_filter(peer_levels=(("peer-a", PrivacyLevel.STRICT),))
    assert privacy.level_for(PEER) is PrivacyLevel.STRICT
    assert privacy.level_for(Destination.peer("peer-b")) is PrivacyLevel.MODERATE
    assert privacy.level_for(Destination.group("peer-a")) is PrivacyLevel.MODERATE
    export = Destination.consumer("file", level=PrivacyLevel.OPEN)
    assert privacy.level_for(export) is PrivacyLevel.OPEN
    assert (
        privacy.level_for(Destination.peer("peer-a", level=PrivacyLevel.OPEN)) is PrivacyLevel.OPEN
    )
    shared = privacy.share(make(), PEER)
    assert shared is not None
    assert shared.level is PrivacyLevel.STRICT


def test_custom_fields_need_switch_and_allow_list(
    make_filter: MakeFilter, make: MakeIndicator
) -> None:
    indicator = make(
        custom_fields={"family": "mirai", "internal_ticket": "INC-1", "note": "see fs01.corp"}
    )
    closed = make_filter(level=PrivacyLevel.OPEN, allow_custom_fields=False).share(indicator, PEER)
    opened = make_filter(level=PrivacyLevel.OPEN).share(indicator, PEER)
    assert closed is not None
    assert closed.to_json()["custom_fields"] == {}
    assert opened is not None
    assert opened.to_json()["custom_fields"] == {"family": "mirai"}


def test_failing_tags_go_and_the_indicator_stays(
    open_privacy: PrivacyFilter, make: MakeIndicator
) -> None:
    indicator = make(tags=["ssh-bruteforce", "seen on fs01.corp", "user=jdoe", "acmeu"])
    shared = open_privacy.share(indicator, PEER)
    assert shared is not None
    assert shared.tags == ("ssh-bruteforce",)
    assert open_privacy.share(indicator, PEER) == shared  # cached tag sets give the same answer


def test_learned_evidence_is_stripped(open_privacy: PrivacyFilter, make: MakeIndicator) -> None:
    indicator = make(tags=["wks-0042 targeted", "bruteforce"])
    before = open_privacy.share(indicator, PEER)
    assert before is not None
    assert before.tags == ("bruteforce", "wks-0042 targeted")
    open_privacy.learn(Evidence(hosts=("WKS-0042",), users=("mbrown",), paths=("/srv/app",)))
    after = open_privacy.share(indicator, PEER)
    assert after is not None
    assert after.tags == ("bruteforce",)
    assert open_privacy.share(make("http://evil.xyz/mbrown/x"), PEER) is None


def test_sanitize_gives_reasons(privacy: PrivacyFilter, make: MakeIndicator) -> None:
    cases = [
        (make(scope="local"), WithholdReason.SCOPE_LOCAL),
        (make(tlp="red", recipients=["peer-b"]), WithholdReason.NOT_RECIPIENT),
        (make("10.0.0.1"), WithholdReason.WARNINGLIST),
        (make("acmeu-login.xyz"), WithholdReason.INTERNAL_VALUE),
    ]
    for indicator, reason in cases:
        decision = privacy.sanitize(indicator, PEER)
        assert not decision.allowed
        assert decision.reason is reason
        assert decision.detail
        assert privacy.share(indicator, PEER) is None
        assert list(privacy.share_many([indicator], PEER)) == []
    decision = privacy.sanitize(make("10.0.0.1"), PEER)
    assert decision.hit is not None
    assert decision.hit.list_name == "rfc1918"
    allowed = privacy.sanitize(make(), PEER)
    assert allowed.allowed
    assert allowed.reason is None
    assert allowed.shareable == privacy.share(make(), PEER)


def test_share_many_matches_share(open_privacy: PrivacyFilter, make: MakeIndicator) -> None:
    until = NOW + timedelta(days=1)
    indicators = [
        make(),
        make("8.8.8.8"),
        make("evil.xyz", tlp="amber", recipients=["team-x"]),
        make("bad.xyz", tlp="amber", recipients=["peer-z"]),
        make("worse.xyz", tlp="clear"),
        make("x.xyz", scope="group", recipients=["team-x"]),
    ]
    one_by_one = [open_privacy.share(item, PEER, valid_until=until) for item in indicators]
    many = list(open_privacy.share_many(indicators, PEER, valid_until=lambda _: until))
    assert many == [item for item in one_by_one if item is not None]
    assert len(many) == 4
    assert next(iter(open_privacy.share_many(indicators, PEER))).valid_until is None


def test_timestamps_are_coarsened(make_filter: MakeFilter, make: MakeIndicator) -> None:
    privacy = make_filter(timestamp_precision=TimestampPrecision.DAY)
    first = datetime(2026, 2, 27, 23, 59, 59, tzinfo=UTC)
    shared = privacy.share(make(first_seen=first, last_seen=NOW), PEER, valid_until=NOW)
    assert shared is not None
    assert shared.first_seen == datetime(2026, 2, 27, tzinfo=UTC)
    assert shared.last_seen == datetime(2026, 3, 1, tzinfo=UTC)
    assert shared.valid_until == datetime(2026, 3, 1, tzinfo=UTC)


def test_marking_is_never_loosened(make_filter: MakeFilter, make: MakeIndicator) -> None:
    privacy = make_filter()
    for tlp in Tlp:
        shared = privacy.share(make(tlp=tlp, recipients=["peer-a"]), PEER)
        assert shared is not None
        assert shared.tlp is tlp


def test_noise_on_sightings(make_filter: MakeFilter, make: MakeIndicator) -> None:
    privacy = PrivacyFilter(
        policy(level=PrivacyLevel.OPEN, dp_epsilon=0.5, sightings_buckets=()),
        noise=SeededNoise(random.Random(3)),
    )
    indicator = make(sightings=500)
    outputs = [privacy.sightings(indicator) for _ in range(4000)]
    mean = sum(outputs) / len(outputs)
    mean_abs = sum(abs(o - 500) for o in outputs) / len(outputs)
    assert abs(mean - 500) < 0.3
    assert abs(mean_abs - 2.0) < 0.3  # scale 1/epsilon = 2, rounding moves it a little
    assert len(set(outputs)) > 10
    bucketed = make_filter(level=PrivacyLevel.OPEN, dp_epsilon=0.5)
    assert bucketed.sightings(indicator) in (200, 500)


def test_accept_from_peer(privacy: PrivacyFilter, make: MakeIndicator) -> None:
    for value in (
        "10.0.0.1",
        "81.2.69.5",
        "vpn.acme-univ.org",
        "8.8.8.8",
        "google.com",
        "printer.local",
    ):
        verdict = privacy.accept_from_peer(make(value))
        assert not verdict.accepted
        assert verdict.hit is not None
        assert verdict.detail
    assert privacy.accept_from_peer(make("45.33.32.156")).accepted
    # A peer telling us about a look-alike of our own name is useful to us.
    assert privacy.accept_from_peer(make("acmeu-login.xyz")).accepted


def test_module_functions_share_a_filter_per_policy(make: MakeIndicator) -> None:
    node = policy()
    assert filter_for(node) is filter_for(node)
    assert sanitize(make(), PEER, node).allowed
    assert not accept_from_peer(make("10.0.0.1"), node).accepted
    assert explain(make(), PEER, node).shared


def test_group_scope_and_relays(privacy: PrivacyFilter, make: MakeIndicator) -> None:
    received = make("evil.xyz", tlp="amber", scope=Scope.PRIVATE, recipients=())
    # Stored without recipients, a received AMBER indicator can reach no one.
    for destination in (PEER, Destination.group("team-x"), Destination.public()):
        assert privacy.share(received, destination) is None


def test_verdict_caches_stay_bounded(make: MakeIndicator) -> None:
    privacy = PrivacyFilter(policy(level=PrivacyLevel.OPEN), cache_size=2)
    for n in range(5):
        shared = privacy.share(make(tags=[f"tag-{n}", "user=x"]), PEER)
        assert shared is not None
        assert shared.tags == (f"tag-{n}",)
    assert len(privacy._tag_verdicts) <= 2
    assert len(privacy._tag_sets) <= 2
