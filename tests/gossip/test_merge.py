"""The report CRDT: any order, any duplication, same state; caps hold on every path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.aging import DecayModel, Verdict
from dtim.errors import SignatureError
from dtim.gossip.corroboration import reporter_token
from dtim.gossip.merge import MergeState, admissible, deadline
from dtim.gossip.report import Item, item_id
from dtim.model import indicator_id
from dtim.model.tlp import Tlp
from tests.gossip.reports import BUCKET, DAY, NODE_A, NODE_B, make_report, make_tombstone, verify

NOW = datetime.fromtimestamp(BUCKET, UTC)
VALUES = ["203.0.113.7", "198.51.100.9"]
SECRETS = [bytes([i]) * 16 for i in range(5)]


def _report(value: int, secret: int, confidence: int, hours: int, tag: str | None) -> Item:
    target = VALUES[value]
    return make_report(
        target,
        bucket=BUCKET + 3600 * hours,
        confidence=confidence,
        reporter=reporter_token(SECRETS[secret], indicator_id("ipv4", target)),
        tags=(tag,) if tag else (),
        tlp=Tlp.AMBER if tag == "amber" else Tlp.GREEN,
        recipients=("peer-x",) if tag == "amber" else (),
    )


reports = st.builds(
    _report,
    st.integers(0, 1),
    st.integers(0, 4),
    st.integers(0, 100),
    st.integers(0, 48),
    st.sampled_from([None, "ssh", "scan", "amber"]),
)
tombstones = st.builds(
    lambda value, days, signer: make_tombstone(
        VALUES[value], expires=BUCKET + days * DAY, signer=signer
    ),
    st.integers(0, 1),
    st.integers(1, 5),
    st.sampled_from([NODE_A, NODE_B]),  # relayed tombstones of several issuers
)
items = st.lists(st.one_of(reports, reports, reports, tombstones), max_size=25)


def _state(sequence: list[Item]) -> MergeState:
    state = MergeState(verify)
    state.update(sequence)
    return state


def _snapshot(state: MergeState, moment: datetime) -> tuple[object, ...]:
    views = tuple(state.view(indicator_id("ipv4", v), moment) for v in VALUES)
    return (frozenset(k for k, _ in state.items()), views)


@given(items, st.randoms(use_true_random=False), st.integers(0, 6))
def test_any_order_and_duplication_gives_the_same_state(
    sequence: list[Item], rng: object, days: int
) -> None:
    shuffled = list(sequence) + list(sequence[: len(sequence) // 2])
    rng.shuffle(shuffled)  # type: ignore[attr-defined]  # hypothesis Random
    moment = NOW + timedelta(days=days)
    assert _snapshot(_state(sequence), moment) == _snapshot(_state(shuffled), moment)


@given(items, items, items)
def test_merge_is_associative_union(a: list[Item], b: list[Item], c: list[Item]) -> None:
    left = _state(a + b)
    left.update(c)
    right = _state(a)
    right.update(b + c)
    assert _snapshot(left, NOW) == _snapshot(right, NOW)


@given(
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 48)), min_size=1, max_size=20),
    st.randoms(),
)
def test_a_single_reporter_never_exceeds_the_cap_whatever_the_relay_path(
    claims: list[tuple[int, int]], rng: object
) -> None:
    # One origin, any number of reports, relayed and duplicated in any order by many nodes.
    sent = [_report(0, 0, confidence, hours, None) for confidence, hours in claims]
    nodes = [MergeState(verify) for _ in range(4)]
    for _ in range(3):
        for node in nodes:
            batch = list(sent)
            rng.shuffle(batch)  # type: ignore[attr-defined]  # hypothesis Random
            node.update(batch[: rng.randint(1, len(batch))])  # type: ignore[attr-defined]
            for other in nodes:
                other.update(item for _, item in node.items())
    for node in nodes:
        view = node.view(indicator_id("ipv4", VALUES[0]), NOW)
        assert view is not None
        assert view.reporters == 1
        assert view.base <= 40
        assert view.confidence(NOW, DecayModel()) <= 40


def test_derived_view() -> None:
    state = _state(
        [
            _report(0, 0, 90, 0, "ssh"),
            _report(0, 1, 70, 5, "scan"),
            _report(0, 0, 95, 2, None),
            _report(0, 2, 50, 1, "amber"),
        ]
    )
    view = state.view(indicator_id("ipv4", VALUES[0]), NOW)
    assert view is not None
    assert view.reporters == 3
    assert state.reporters(indicator_id("ipv4", VALUES[0])) == 3
    assert state.reporters(indicator_id("ipv4", VALUES[1])) == 0
    assert view.first_seen == NOW
    assert view.last_seen == NOW + timedelta(hours=5)
    assert view.tags == ("amber", "scan", "ssh")
    assert view.tlp is Tlp.AMBER
    assert view.recipients == ("peer-x",)
    # claims per reporter 95, 70, 50: one alone 40, two agree on 60, three on 50.
    assert view.base == 60
    assert view.confidence(NOW + timedelta(hours=5), DecayModel()) == 60
    assert state.view(indicator_id("ipv4", "192.0.2.1"), NOW) is None


def test_a_valid_tombstone_wins_until_it_expires() -> None:
    target = indicator_id("ipv4", VALUES[0])
    state = _state([_report(0, i, 90, 0, None) for i in range(3)] + [make_tombstone(VALUES[0])])
    view = state.view(target, NOW)
    assert view is not None
    assert view.verdict is Verdict.FALSE_POSITIVE
    assert view.confidence(NOW, DecayModel()) == 0
    later = state.view(target, NOW + timedelta(days=8))
    assert later is not None
    assert later.verdict is None
    assert later.confidence(NOW + timedelta(days=8), DecayModel()) > 0


def test_a_forged_tombstone_is_refused_and_leaves_no_trace() -> None:
    forged = make_tombstone(signature="bm90IGEgc2lnbmF0dXJl")
    state = MergeState(verify)
    with pytest.raises(SignatureError, match=f"not signed by {NODE_A.node_id}"):
        state.add(forged)
    assert len(state) == 0
    assert state.indicators() == frozenset()
    state.add(_report(0, 0, 50, 0, None))
    with pytest.raises(SignatureError):
        state.add(forged)
    assert len(state) == 1


def test_add_update_contains_and_known_ids() -> None:
    report = _report(0, 0, 50, 0, None)
    state = MergeState(verify)
    assert state.add(report, item_id(report))
    assert not state.add(report)
    assert item_id(report) in state
    assert len(state) == 1


def test_purge_and_arrival_checks_use_the_same_deadline() -> None:
    model = DecayModel()
    report = _report(0, 0, 50, 0, None)
    tombstone = make_tombstone(VALUES[1])
    assert deadline(report, model) == BUCKET + 30 * DAY
    assert deadline(tombstone, model) == tombstone.expires
    long_lived = make_report("0" * 64, "sha256", expires=BUCKET + 400 * DAY)
    assert deadline(long_lived, model) == BUCKET + 365 * DAY
    state = _state([report, tombstone, long_lived])
    assert state.purge(NOW + timedelta(days=1), model) == []
    assert set(state.purge(NOW + timedelta(days=30), model)) == {
        item_id(report),
        item_id(tombstone),
    }
    assert len(state) == 1
    assert len(state.indicators()) == 1
    assert admissible(report, NOW, model)
    assert not admissible(report, NOW + timedelta(days=30), model)
    assert admissible(tombstone, NOW, model)
    assert not admissible(tombstone, NOW + timedelta(days=7), model)
