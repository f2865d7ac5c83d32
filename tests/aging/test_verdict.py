"""Verdicts override decay; expired reports are refused on arrival."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dtim.aging import (
    AnalystVerdict,
    DecayModel,
    Verdict,
    current_confidence,
    decayed,
    expired_on_arrival,
)
from dtim.errors import ValidationError
from dtim.model import make_indicator

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MODEL = DecayModel()


def test_parse_verdicts() -> None:
    assert Verdict.parse("False-Positive") is Verdict.FALSE_POSITIVE
    assert Verdict.parse(" revoked ") is Verdict.REVOKED
    with pytest.raises(ValidationError, match="unknown verdict"):
        Verdict.parse("maybe")
    assert Verdict.REVOKED.suppresses
    assert not Verdict.CONFIRMED.suppresses


def test_verdict_is_never_overridden_by_decay() -> None:
    long_after = T0 + timedelta(days=365)
    confirmed = AnalystVerdict(Verdict.CONFIRMED, 90)
    assert current_confidence(80, "ipv4", T0, long_after, MODEL, confirmed) == 90
    assert (
        current_confidence(80, "ipv4", T0, T0, MODEL, AnalystVerdict(Verdict.FALSE_POSITIVE)) == 0
    )
    assert current_confidence(80, "ipv4", T0, T0, MODEL, AnalystVerdict(Verdict.REVOKED)) == 0
    assert current_confidence(80, "ipv4", T0, long_after, MODEL) == 0
    with pytest.raises(ValidationError):
        AnalystVerdict(Verdict.CONFIRMED, 101)


def test_decayed_reads_a_stored_indicator() -> None:
    indicator = make_indicator("203.0.113.7", now=T0, confidence=80)
    assert decayed(indicator, MODEL, T0 + timedelta(days=7.5)) == 40
    # A new sighting anywhere resets the clock: last_seen moves, the score comes back.
    refreshed = make_indicator(
        "203.0.113.7", now=T0, confidence=80, last_seen=T0 + timedelta(days=7.5)
    )
    assert decayed(refreshed, MODEL, T0 + timedelta(days=7.5)) == 80
    assert decayed(indicator, MODEL, T0, AnalystVerdict(Verdict.REVOKED)) == 0


def test_expired_on_arrival() -> None:
    assert not expired_on_arrival("ipv4", T0, T0 + timedelta(days=29), MODEL)
    assert expired_on_arrival("ipv4", T0, T0 + timedelta(days=30), MODEL)
    # The report's own expiry counts too, even when the local curve is longer.
    assert expired_on_arrival(
        "sha256", T0, T0 + timedelta(days=2), MODEL, expires=T0 + timedelta(days=1)
    )
    assert not expired_on_arrival(
        "sha256", T0, T0 + timedelta(days=2), MODEL, expires=T0 + timedelta(days=3)
    )
