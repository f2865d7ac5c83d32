"""Dandelion++ routing invariants."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dtim.errors import ValidationError
from dtim.gossip.dandelion import DandelionConfig, Router
from dtim.gossip.report import ItemId
from dtim.model import FakeClock, PeerId

PEERS = [PeerId(f"peer-{i}") for i in range(8)]
ITEM = ItemId(b"\x01" * 32)


def _router(
    seed: int = 1, clock: FakeClock | None = None, **config: float
) -> tuple[Router, FakeClock]:
    clock = clock or FakeClock()
    router = Router(DandelionConfig(**config), clock, random.Random(seed))  # type: ignore[arg-type]
    router.set_peers(PEERS)
    return router, clock


def test_two_successors_a_fixed_own_route_and_a_fixed_route_per_inbound_peer() -> None:
    router, _ = _router(fluff_probability=0.0)
    assert len(router.successors) == 2
    assert set(router.successors) <= set(PEERS)
    own = {router.originate(ItemId(bytes([i]) * 32)) for i in range(20)}
    assert len(own) == 1
    assert own <= set(router.successors)
    for n, inbound in enumerate(PEERS):
        routes = {router.relay(ItemId(bytes([200 + n, i]) * 16), inbound) for i in range(20)}
        assert len(routes) == 1
        assert routes <= set(router.successors)


def test_successors_are_reshuffled_each_epoch() -> None:
    router, clock = _router(seed=3, fluff_probability=0.0)
    seen = set()
    for _ in range(30):
        seen.add(router.successors)
        clock.advance(601)
        router.relay(ItemId(clock.now().isoformat().encode().ljust(32, b"x")), PEERS[0])
    assert len(seen) > 5


def test_each_hop_fluffs_with_probability_one_tenth() -> None:
    diffusers = 0
    for seed in range(2000):
        router, _ = _router(seed)
        diffusers += router.relay(ITEM, PEERS[0]) is None
    assert 150 <= diffusers <= 250


def test_a_stem_coming_back_from_another_peer_is_a_loop_and_is_fluffed() -> None:
    router, _ = _router(fluff_probability=0.0)
    first = router.relay(ITEM, PEERS[0])
    assert first is not None
    assert router.holding(ITEM)
    assert router.relay(ITEM, PEERS[0]) == first  # a repeat from the same peer goes the same way
    assert router.relay(ITEM, PEERS[1]) is None
    assert not router.holding(ITEM)


def test_repeats_from_one_peer_are_bounded() -> None:
    router, _ = _router(fluff_probability=0.0, origin_attempts=2)
    assert router.relay(ITEM, PEERS[0]) is not None
    assert router.relay(ITEM, PEERS[0]) is not None
    assert router.relay(ITEM, PEERS[0]) is None


def test_origin_holds_its_report_then_resends_then_fluffs() -> None:
    router, clock = _router(
        fluff_probability=0.0, interval_seconds=60, origin_hold_intervals=2, origin_attempts=2
    )
    successor = router.originate(ITEM)
    assert successor in router.successors
    assert router.holding(ITEM)
    clock.advance(119)
    assert router.due() == ([], [])
    clock.advance(1)
    assert router.due() == ([], [(ITEM, successor)])
    assert router.holding(ITEM)
    clock.advance(120)
    assert router.due() == ([ITEM], [])
    assert not router.holding(ITEM)


def test_gossip_ends_a_relay_hold_but_the_origin_waits_a_little_longer() -> None:
    router, clock = _router(fluff_probability=0.0, interval_seconds=60, return_hold_intervals=5)
    relayed = ItemId(b"\x09" * 32)
    router.relay(relayed, PEERS[0])
    router.seen_in_gossip(relayed)
    assert not router.holding(relayed)
    router.originate(ITEM)
    clock.advance(60)
    router.seen_in_gossip(ITEM)
    router.seen_in_gossip(ITEM)  # a second copy does not restart the hold
    assert router.holding(ITEM)
    clock.advance(299)
    assert router.due() == ([], [])
    clock.advance(1)
    assert router.due() == ([ITEM], [])  # released, never resent once it came back
    assert not router.holding(ITEM)
    router.seen_in_gossip(ItemId(b"\x07" * 32))  # unknown items are ignored


def test_own_report_coming_round_the_stem_goes_to_the_own_successor_again() -> None:
    for probability in (0.0, 1.0):
        router, _ = _router(fluff_probability=probability)
        own = router.originate(ITEM)
        assert router.relay(ITEM, PEERS[3]) == own
        assert router.relay(ITEM, PEERS[4]) == own
        assert router.holding(ITEM)
    lonely = Router(DandelionConfig(), FakeClock(), random.Random(1))
    lonely.originate(ITEM)
    assert lonely.relay(ITEM, PEERS[0]) is None
    assert lonely.holding(ITEM)


def test_relay_embargo_fluffs_a_stalled_stem() -> None:
    router, clock = _router(
        fluff_probability=0.0,
        interval_seconds=60,
        embargo_base_intervals=4,
        embargo_mean_intervals=0,
    )
    router.relay(ITEM, PEERS[0])
    clock.advance(239)
    assert router.due() == ([], [])
    clock.advance(1)
    assert router.due() == ([ITEM], [])


def test_diffuser_and_no_peers_fluff_at_once() -> None:
    router, _ = _router(fluff_probability=1.0)
    assert router.diffuser
    assert router.relay(ITEM, PEERS[0]) is None
    lonely = Router(DandelionConfig(), FakeClock(), random.Random(1))
    assert lonely.originate(ITEM) is None
    assert lonely.relay(ItemId(b"\x02" * 32), PEERS[0]) is None
    clock = FakeClock()
    alone = Router(DandelionConfig(origin_attempts=3), clock, random.Random(1))
    alone.originate(ITEM)
    clock.advance(1000)
    assert alone.due() == ([ITEM], [])  # no successor to resend to: fluff


def test_inbound_routes_spread_over_both_successors() -> None:
    counts: Counter[bool] = Counter()
    for seed in range(200):
        router, _ = _router(seed, fluff_probability=0.0)
        routes = {router.relay(ItemId(bytes([i]) * 32), peer) for i, peer in enumerate(PEERS)}
        counts[len(routes) == 2] += 1
    assert counts[True] > 150


def test_config_is_checked() -> None:
    for bad in (
        {"successors": 0},
        {"fluff_probability": 2},
        {"epoch_seconds": 0},
        {"origin_attempts": 0},
    ):
        with pytest.raises(ValidationError):
            DandelionConfig(**bad)
