"""An analyst's verdict recorded on an indicator pins its confidence until it expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dtim.model import Indicator, Scope, make_indicator, merge
from dtim.model.indicator import VERDICT_FIELD, JsonValue, lift_verdict, standing_verdict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def marked(expires: JsonValue, scope: JsonValue = "private") -> Indicator:
    field: dict[str, JsonValue] = {"verdict": "false_positive", "expires": expires}
    if scope is not None:
        field["scope"] = scope
    return make_indicator(
        "45.155.0.9",
        "ipv4",
        now=NOW,
        confidence=0,
        scope="local",
        custom_fields={VERDICT_FIELD: field},
    )


def seen(at: datetime, confidence: int = 90) -> Indicator:
    return make_indicator("45.155.0.9", "ipv4", now=at, confidence=confidence)


def test_a_standing_verdict_keeps_the_confidence_through_merges() -> None:
    pinned = marked("2026-03-31T12:00:00Z")
    assert standing_verdict(pinned, NOW) is not None
    merged = merge(pinned, seen(NOW + timedelta(days=1)))
    assert merged.confidence == 0
    assert merged.scope is Scope.LOCAL
    assert merged.sightings == 2
    assert VERDICT_FIELD in merged.custom_fields


def test_a_verdict_without_expiry_stands_until_changed() -> None:
    pinned = marked(None)
    assert standing_verdict(pinned, NOW + timedelta(days=3650)) is not None
    assert merge(pinned, seen(NOW + timedelta(days=3650))).confidence == 0


def test_a_sighting_after_the_expiry_lifts_the_verdict_and_restores_the_scope() -> None:
    pinned = marked("2026-03-31T12:00:00Z", scope="public")
    later = NOW + timedelta(days=31)
    assert standing_verdict(pinned, later) is None
    merged = merge(pinned, seen(later, 60))
    assert merged.confidence == 60
    assert merged.scope is Scope.PUBLIC
    assert VERDICT_FIELD not in merged.custom_fields


def test_an_unreadable_verdict_pins_nothing() -> None:
    assert standing_verdict(marked("next tuesday"), NOW) is None
    plain = seen(NOW)
    assert standing_verdict(plain, NOW) is None
    odd = make_indicator(
        "45.155.0.9", "ipv4", now=NOW, custom_fields={VERDICT_FIELD: "false_positive"}
    )
    assert standing_verdict(odd, NOW) is None
    assert lift_verdict(odd).custom_fields == {}


def test_lifting_keeps_the_scope_when_none_or_a_bad_one_was_recorded() -> None:
    assert lift_verdict(marked(None, scope=None)).scope is Scope.LOCAL
    assert lift_verdict(marked(None, scope="galactic")).scope is Scope.LOCAL
