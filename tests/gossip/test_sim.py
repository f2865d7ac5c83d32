"""The simulation: small, seeded runs of the real components."""

from __future__ import annotations

import statistics

import pytest

from dtim.errors import ValidationError
from dtim.gossip.ranges import SortedItems
from dtim.gossip.reconcile import converse
from dtim.gossip.sim import seeded
from dtim.gossip.sim.graph import Graph
from dtim.gossip.sim.poison import PoisonConfig, run_poisoning
from dtim.gossip.sim.sessions import SessionBook, delivered, random_keys
from dtim.gossip.sim.spread import SpreadConfig, run_spread
from dtim.gossip.sim.summary import simulate


def test_graphs() -> None:
    rng = seeded(1)
    regular = Graph(200, 8, rng)
    degrees = [len(regular.neighbours(n)) for n in range(200)]
    assert statistics.fmean(degrees) > 7.5
    assert all(n not in regular.neighbours(n) for n in range(200))
    assert all(a in regular.neighbours(b) for b in range(200) for a in regular.neighbours(b))
    picked = regular.pick(0, 3, rng)
    assert len(set(picked)) == 3
    assert set(picked) <= set(regular.neighbours(0))
    odd = Graph(50, 5, rng)
    assert statistics.fmean(len(odd.neighbours(n)) for n in range(50)) > 4.5
    complete = Graph(10, None, rng)
    assert complete.neighbours(3) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert 3 not in complete.pick(3, 9, rng)
    assert len(complete.pick(3, 20, rng)) == 9
    with pytest.raises(ValidationError):
        Graph(1, None, rng)
    with pytest.raises(ValidationError):
        Graph(10, 10, rng)


def test_session_book_runs_real_sessions_then_replays_them() -> None:
    rng = seeded(2)
    background = random_keys(100, rng)
    extra = frozenset(random_keys(1, rng))
    book = SessionBook(background, rng, samples=2)
    assert book.session(frozenset(), frozenset()) is book.idle
    first = book.session(extra, frozenset())
    book.session(extra, frozenset())
    replay = book.session(extra, frozenset())
    assert book.stats.real == 2
    assert book.stats.replayed == 1
    assert book.stats.idle == 1
    assert book.stats.sessions == 4
    expected = converse(SortedItems([*background, *extra]), SortedItems(background))
    assert first.to_responder == replay.to_responder == expected.to_responder
    assert book.stats.busy_bytes == book.stats.bytes - book.idle.bytes


def test_lost_messages_end_the_session_but_keep_what_arrived() -> None:
    rng = seeded(3)
    shared = random_keys(50, rng)
    left, right = random_keys(3, rng), random_keys(3, rng)
    transcript = converse(SortedItems(shared + left), SortedItems(shared + right))
    to_right, to_left, complete = delivered(transcript, 0.0, rng)
    assert complete
    assert to_right == {i for _, i in left}
    assert to_left == {i for _, i in right}
    assert delivered(transcript, 0.999999, rng) == (set(), set(), False)


def test_a_report_reaches_everyone_fast_and_hides_its_origin() -> None:
    result = run_spread(SpreadConfig(nodes=300, degree=8, seed=5, collusion_draws=20))
    assert result.coverage[-1] == 1.0
    assert list(result.coverage) == sorted(result.coverage)
    reached = [result.rounds_to(f) or 99 for f in (0.5, 0.99, 1.0)]
    assert reached == sorted(reached)
    assert reached[2] <= 8
    assert result.stem_hops >= 1
    assert result.sessions.real > 0
    assert 0.0 <= result.neighbour_guess <= 1.0
    assert set(result.colluding_guess) == {0.05, 0.10, 0.20}
    assert SpreadConfig().nodes == 1000
    assert run_spread(SpreadConfig(nodes=300, degree=8, seed=5, rounds=1)).rounds_to(1.0) is None


def test_dandelion_beats_naive_gossip_for_a_curious_neighbour() -> None:
    document = simulate(
        SpreadConfig(nodes=200, degree=8, seed=1, collusion_draws=20), runs=6, naive=True
    )
    assert isinstance(document["origin_guess_rate"], float)
    assert isinstance(document["naive_origin_guess_rate"], float)
    assert document["origin_guess_rate"] < 0.25 < document["naive_origin_guess_rate"]
    assert isinstance(document["per_run"], list)
    assert len(document["per_run"]) == 6
    for key in (
        "nodes",
        "fanout",
        "degree",
        "loss",
        "rounds_to_50",
        "rounds_to_99",
        "rounds_to_100",
    ):
        assert key in document
    assert simulate(SpreadConfig(nodes=50, rounds=1), runs=1)["rounds_to_100"] is None


def test_loss_slows_but_does_not_stop_the_spread() -> None:
    lossy = run_spread(SpreadConfig(nodes=300, seed=7, loss=0.3))
    clean = run_spread(SpreadConfig(nodes=300, seed=7))
    assert lossy.rounds_to(1.0) is not None
    assert clean.rounds_to(1.0) is not None
    assert lossy.rounds_to(1.0) >= clean.rounds_to(1.0)  # type: ignore[operator]  # both checked above


def test_lone_poisoners_never_reach_the_block_threshold() -> None:
    config = PoisonConfig(nodes=60, rounds=20, fakes_per_round=20, settle_rounds=8, seed=2)
    result = run_poisoning(config)
    assert result.malicious_nodes == 6
    assert result.fake_max_confidence == 40
    assert result.fake_pairs_at_threshold == 0
    assert result.real_judged > 0
    assert result.real_pairs_at_threshold == 1.0


def test_sybil_tokens_defeat_the_caps_as_documented() -> None:
    config = PoisonConfig(
        nodes=60, rounds=10, fakes_per_round=20, settle_rounds=5, sybil_tokens=3, seed=2
    )
    assert run_poisoning(config).fake_max_confidence == 100


def test_a_tight_quota_refuses_and_delays_but_loses_nothing() -> None:
    config = PoisonConfig(
        nodes=60, rounds=25, fakes_per_round=100, quota=150, settle_rounds=10, seed=3, loss=0.1
    )
    result = run_poisoning(config)
    assert result.refused_by_quota > 0
    assert result.fake_max_confidence <= 40
    assert result.real_indicators_at_99 == 1.0
