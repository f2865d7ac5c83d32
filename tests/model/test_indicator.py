from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.errors import ValidationError
from dtim.model import Scope, Tlp, indicator_id, make_indicator, merge
from dtim.model.ids import DTIM_NAMESPACE
from dtim.model.indicator import indicator_from_json, validate_confidence

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_ids_are_uuid5_of_type_and_normalised_value() -> None:
    a = make_indicator("hxxp://EVIL[.]example:80", now=NOW)
    b = make_indicator("http://evil.example/", "url", now=NOW + timedelta(days=3))
    assert a.id == b.id == indicator_id("url", "http://evil.example/")
    assert (
        a.id == "b600ff35-76d4-559f-9f2d-6fd78190bc66"
    )  # frozen: every node must compute the same


@given(st.ip_addresses(v=4).map(str))
def test_ids_are_stable(value: str) -> None:
    assert make_indicator(value, now=NOW).id == make_indicator(f" {value} ", "ipv4", now=NOW).id


@pytest.mark.parametrize(
    ("raw", "tlp"),
    [
        ("white", Tlp.CLEAR),
        ("TLP:CLEAR", Tlp.CLEAR),
        ("amber+strict", Tlp.AMBER_STRICT),
        ("AMBER_STRICT", Tlp.AMBER_STRICT),
        ("Red", Tlp.RED),
    ],
)
def test_tlp_names_and_aliases(raw: str, tlp: Tlp) -> None:
    assert Tlp.parse(raw) is tlp


def test_tlp_order_and_errors() -> None:
    assert Tlp.GREEN.stricter(Tlp.RED) is Tlp.RED
    assert Tlp.AMBER.needs_recipients
    assert not Tlp.GREEN.needs_recipients
    with pytest.raises(ValidationError, match="unknown TLP 'purple'"):
        Tlp.parse("purple")
    with pytest.raises(ValidationError, match="unknown scope"):
        Scope.parse("galaxy")


@pytest.mark.parametrize("bad", [-1, 101, 3.5, "high", True, None])
def test_confidence_is_validated(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        validate_confidence(bad)
    assert info.value.field == "confidence"


def test_validation_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        make_indicator("1.2.3.4", now=NOW, tlp="blue")
    assert info.value.field == "tlp"
    with pytest.raises(ValidationError) as info:
        make_indicator("1.2.3.4", now=NOW, tags=["x" * 200])
    assert info.value.field == "tags"
    with pytest.raises(ValidationError) as info:
        make_indicator("1.2.3.4", now=NOW, first_seen=NOW, last_seen=NOW - timedelta(1))
    assert info.value.field == "last_seen"


def test_merge_folds_observations() -> None:
    first = make_indicator("1.2.3.4", now=NOW, tags=["scanner"], confidence=40, tlp="green")
    later = make_indicator(
        "1.2.3.4",
        now=NOW + timedelta(hours=2),
        tags=["ssh"],
        confidence=80,
        tlp="amber",
        sightings=3,
    )
    merged = merge(first, later)
    assert merged.sightings == 4
    assert merged.first_seen == NOW
    assert merged.last_seen == NOW + timedelta(hours=2)
    assert merged.tags == ("scanner", "ssh")
    assert merged.confidence == 80
    assert merged.tlp is Tlp.AMBER
    with pytest.raises(ValidationError):
        merge(first, make_indicator("5.6.7.8", now=NOW))


def test_json_round_trip_and_seed_schema() -> None:
    original = make_indicator(
        "evil.example",
        now=NOW,
        tags=["malware"],
        tlp="red",
        recipients=["node-2"],
        custom_fields={"threat_category": "bruteforce"},
    )
    assert indicator_from_json(original.to_json()) == original
    seed = {
        "type": "ip",
        "value": "1.2.3.4",
        "confidence": 80,
        "created": "2025-05-17T15:00:00Z",
        "modified": "2025-05-17T16:00:00Z",
        "sightings": 3,
        "tags": ["malware"],
        "tlp": "red",
        "recipients": ["node-2"],
        "custom_fields": {"source": "ufw"},
    }
    parsed = indicator_from_json(seed)
    assert (parsed.type, parsed.sightings, parsed.tlp) == ("ipv4", 3, Tlp.RED)
    assert parsed.modified == datetime(2025, 5, 17, 16, tzinfo=UTC)
    with pytest.raises(ValidationError, match="sightings"):
        indicator_from_json({**seed, "sightings": "many"})
    with pytest.raises(ValidationError, match="created"):
        indicator_from_json({"value": "1.2.3.4"})


@given(st.sampled_from(("ipv4", "domain", "url", "sha256", "x-custom")), st.text())
def test_indicator_id_is_uuid5_of_type_and_value(type_: str, value: str) -> None:
    try:
        expected = str(uuid.uuid5(DTIM_NAMESPACE, f"{type_}:{value}"))
    except UnicodeEncodeError:  # a lone surrogate: both refuse it
        with pytest.raises(UnicodeEncodeError):
            indicator_id(type_, value)
        return
    assert indicator_id(type_, value) == expected
