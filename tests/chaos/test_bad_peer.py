"""Approved peers that answer garbage or hang: the honest node's sessions with them end
within ``network.request_timeout_seconds``, their stored score drops, and the node keeps
gossiping with, and serving, its good peer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.chaos.badpeer import BadPeer, bad_peer_home
from tests.chaos.harness import ChaosNode, wait_for
from tests.mesh.cluster import free_port, indicators, public_ips

pytestmark = pytest.mark.timeout(240)

Homes = Callable[[Sequence[str]], list[ChaosNode]]
TIMEOUT = 3
"""network.request_timeout_seconds of the nodes (tests/mesh/cluster.py)."""


def score(node: ChaosNode, peer_id: str) -> float:
    """The peer's score as the node stored it."""
    rows = node.query("SELECT score FROM peers WHERE id = ?", peer_id)
    return float(rows[0][0]) if rows else 0.0  # type: ignore[arg-type]  # sqlite: float


def failures(node: ChaosNode, peer_id: str) -> list[str]:
    """The reasons of the node's failed sessions with one peer, from its log."""
    pattern = re.compile(rf"session with {peer_id[:16]} failed \((.*)\); next try")
    return pattern.findall(node.log_text())


def test_garbage_and_hanging_peers_do_not_stall_the_node(homes: Homes, tmp_path: Path) -> None:
    honest, good = homes(["honest", "good"])
    garbage = BadPeer(bad_peer_home(tmp_path / "garbage"), free_port(), "garbage")
    hang = BadPeer(bad_peer_home(tmp_path / "hang"), free_port(), "hang")
    honest.peers = [
        {"endpoint": endpoint, "public_key": key}
        for endpoint, key in (
            (good.url, good.public_key),
            (f"https://127.0.0.1:{garbage.port}", garbage.public_key),
            (f"https://127.0.0.1:{hang.port}", hang.public_key),
        )
    ]
    good.peers = [{"endpoint": honest.url, "public_key": honest.public_key}]
    nodes = [honest, good]
    with ExitStack() as stack:
        stack.enter_context(garbage.running())
        stack.enter_context(hang.running())
        for node in nodes:
            node.start()
        wait_for(lambda: honest.pinned() >= 3 and good.pinned() >= 1, "peers pinned", 90, nodes)
        start = {p.node_id: score(honest, p.node_id) for p in (garbage, hang)}

        values = public_ips(20, start=9000)
        honest.add(indicators(values))
        wait_for(lambda: set(values) <= good.values(), "reports reach the good peer", 60, nodes)
        wait_for(
            lambda: all(len(failures(honest, p.node_id)) >= 2 for p in (garbage, hang)),
            "failed sessions with both bad peers",
            60,
            nodes,
        )
        assert garbage.requests
        assert hang.requests
        assert any(f"timed out after {TIMEOUT:.1f} s" in r for r in failures(honest, hang.node_id))
        wait_for(
            lambda: all(score(honest, p.node_id) < start[p.node_id] for p in (garbage, hang)),
            "the bad peers' stored scores drop",
            30,
            nodes,
        )
        # The good peer's sessions go on: a report it originates reaches the honest node.
        back = public_ips(5, start=9100)
        good.add(indicators(back))
        wait_for(lambda: set(back) <= honest.values(), "the good peer's reports", 60, nodes)
        assert honest.ready()
        assert score(honest, good.node_id) > max(score(honest, p.node_id) for p in (garbage, hang))
