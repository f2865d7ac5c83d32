"""Blinded reporter tokens, confidence caps and the per-peer new-report quota."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.errors import ValidationError
from dtim.gossip.corroboration import Caps, NewReportQuota, admission_order, reporter_token
from dtim.model import PeerId, indicator_id
from tests.gossip.reports import BUCKET, make_report

FIRST = indicator_id("ipv4", "203.0.113.7")
SECOND = indicator_id("ipv4", "203.0.113.8")


def test_tokens_are_stable_per_indicator_and_unlinkable_across() -> None:
    secret = b"k" * 32
    assert reporter_token(secret, FIRST) == reporter_token(secret, FIRST)
    assert reporter_token(secret, FIRST) != reporter_token(secret, SECOND)
    assert reporter_token(secret, FIRST) != reporter_token(b"j" * 32, FIRST)
    assert len(reporter_token(secret, FIRST)) == 32
    with pytest.raises(ValidationError, match="16 bytes"):
        reporter_token(b"short", FIRST)


def test_caps() -> None:
    caps = Caps()
    assert [caps.cap(n) for n in range(5)] == [0, 40, 60, 100, 100]
    assert caps.combine([]) == 0
    assert caps.combine([100]) == 40
    assert caps.combine([100, 100]) == 60
    assert caps.combine([100, 100, 90]) == 90
    assert (
        caps.combine([100, 50, 50]) == 50
    )  # a third reporter lifts only as far as the others agree
    assert caps.combine([30, 20]) == 30
    for bad in ((), (50, 40), (101,)):
        with pytest.raises(ValidationError):
            Caps(bad)


@given(st.lists(st.integers(0, 100), max_size=10))
def test_combined_confidence_never_exceeds_the_cap_or_the_best_claim(claims: list[int]) -> None:
    caps = Caps()
    combined = caps.combine(claims)
    assert combined <= caps.cap(len(claims))
    assert combined <= max(claims, default=0)
    assert caps.combine([*claims, 0]) >= combined  # another reporter never lowers it


def test_quota_per_peer_per_round() -> None:
    quota = NewReportQuota(limit=1000)
    a, b = PeerId("a"), PeerId("b")
    assert quota.take(a, 600) == 600
    assert quota.take(a, 600) == 400
    assert quota.remaining(a) == 0
    assert quota.take(a, 1) == 0
    assert quota.take(b, 1000) == 1000
    assert quota.refused == {a: 201}
    quota.start_round()
    assert quota.take(a, 10) == 10
    assert quota.refused == {a: 201}
    with pytest.raises(ValidationError):
        NewReportQuota(limit=0)


def test_admission_order_puts_corroborated_reports_first_then_oldest() -> None:
    lone_old = make_report("198.51.100.1", bucket=BUCKET - 7200)
    lone_new = make_report("198.51.100.2")
    pair = [
        make_report(
            "198.51.100.3",
            reporter=reporter_token(bytes([i]) * 16, indicator_id("ipv4", "198.51.100.3")),
        )
        for i in range(2)
    ]
    held_once = make_report("198.51.100.4")
    held = {held_once.indicator: 2}
    ordered = admission_order([lone_new, lone_old, *pair, held_once], lambda i: held.get(i, 0))
    assert ordered[0] == held_once
    assert ordered[1:3] == pair
    assert ordered[3:] == [lone_old, lone_new]
