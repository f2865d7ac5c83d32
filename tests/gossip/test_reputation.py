"""Per-peer reputation: rewards, squared penalties, decay, quarantine, health."""

from __future__ import annotations

import pytest

from dtim.errors import ValidationError
from dtim.gossip.reputation import Reputation, ReputationParams
from dtim.model import FakeClock, IndicatorId, PeerId

A, B, C = PeerId("a"), PeerId("b"), PeerId("c")


def _reputation(**params: float) -> tuple[Reputation, FakeClock]:
    clock = FakeClock()
    reputation = Reputation(clock, ReputationParams(**params))  # type: ignore[arg-type]
    for peer in (A, B, C):
        reputation.approve(peer)
    return reputation, clock


def test_time_approved_counts_up_to_a_cap() -> None:
    reputation, clock = _reputation()
    assert reputation.score(A) == 0
    clock.advance(10 * 3600)
    assert reputation.score(A) == pytest.approx(0.5)
    clock.advance(10_000 * 3600)
    assert reputation.score(A) == pytest.approx(0.05 * 240)


def test_corroborated_first_deliveries_are_rewarded() -> None:
    reputation, _ = _reputation()
    indicator = IndicatorId("i-1")
    reputation.record_first_delivery(A, indicator)
    reputation.record_first_delivery(B, indicator)  # not first
    reputation.record_corroborated(indicator)
    reputation.record_corroborated(indicator)  # credited once
    assert reputation.standing(A).parts["corroborated"] == pytest.approx(0.5)
    assert reputation.standing(B).parts["corroborated"] == 0


def test_first_delivery_memory_is_bounded() -> None:
    reputation, _ = _reputation(first_delivery_memory=2)
    for i in range(3):
        reputation.record_first_delivery(A, IndicatorId(f"i-{i}"))
    reputation.record_corroborated(IndicatorId("i-0"))
    assert reputation.standing(A).parts["corroborated"] == 0


def test_penalties_are_squared_and_decay() -> None:
    reputation, clock = _reputation()
    reputation.record_invalid(A, 2)
    reputation.record_warninglist(A, 2)
    assert reputation.standing(A).parts["invalid"] == pytest.approx(-1.0 * 4 - 0.5 * 4)
    clock.advance(3600)
    assert reputation.standing(A).parts["invalid"] == pytest.approx(-6 * 0.81)
    clock.advance(100 * 3600)
    assert reputation.standing(A).parts["invalid"] == 0


def test_below_threshold_means_quarantine_until_a_person_clears_it() -> None:
    reputation, clock = _reputation()
    for _ in range(3):
        reputation.record_session(B, True)
    reputation.record_invalid(A, 4)
    assert not reputation.allowed(A)
    assert reputation.quarantined() == {A}
    clock.advance(1000 * 3600)  # decay alone does not lift it
    assert not reputation.allowed(A)
    assert reputation.standing(A).quarantined
    reputation.clear(A)
    assert reputation.allowed(A)
    assert not reputation.allowed(PeerId("stranger"))


def test_missed_sessions_count_only_while_healthy() -> None:
    reputation, _ = _reputation()
    for _ in range(10):
        reputation.record_session(B, True)
    reputation.record_session(A, False)
    assert reputation.standing(A).parts["missed"] == pytest.approx(-0.25)
    # Everything starts failing: the fault is probably ours, so blame stops.
    for peer in (A, B, C) * 5:
        reputation.record_session(peer, False)
    assert not reputation.healthy
    before = {peer: reputation.standing(peer).parts["missed"] for peer in (A, B, C)}
    for peer in (A, B, C) * 5:
        reputation.record_session(peer, False)
    assert {peer: reputation.standing(peer).parts["missed"] for peer in (A, B, C)} == before
    reputation.record_invalid(C)
    reputation.record_warninglist(C)
    assert reputation.standing(C).parts["invalid"] == 0


def test_declared_unhealthy_blames_nobody() -> None:
    reputation, _ = _reputation()
    reputation.set_unhealthy(True)
    reputation.record_invalid(A, 10)
    assert reputation.score(A) == 0
    assert reputation.allowed(A)
    reputation.set_unhealthy(False)
    assert reputation.healthy


def test_shared_network_and_issuer_are_penalised_and_trust_counts() -> None:
    clock = FakeClock()
    reputation = Reputation(clock)
    for peer in (A, B, C):
        reputation.approve(peer, network="192.0.2.0/24", issuer="ca-1")
    reputation.approve(PeerId("d"), network="198.51.100.0/24")
    assert reputation.standing(A).parts["colocation"] == pytest.approx(-4.0 * 4 - 2.0 * 4)
    assert reputation.standing(PeerId("d")).parts["colocation"] == 0
    reputation.set_trust(PeerId("d"), 1.0)
    assert reputation.score(PeerId("d")) == pytest.approx(5.0)
    reputation.remove(A)
    assert reputation.standing(B).parts["colocation"] == pytest.approx(-4.0 - 2.0)
    with pytest.raises(ValidationError, match="not scored"):
        reputation.set_trust(A, 1)


def test_params_are_checked() -> None:
    for bad in ({"decay": 1.0}, {"missed_weight": 1.0}, {"health_window": 0}):
        with pytest.raises(ValidationError):
            ReputationParams(**bad)
