"""The gossip health a running node reports to its dashboard: last round, bytes per peer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dtim.gossip.traffic import TrafficMeter
from tests.gossip.localnode import indicator, local_nodes, public_ips


async def test_status_shows_the_last_round_and_the_bytes_exchanged_with_each_peer(
    tmp_path: Path,
) -> None:
    async with local_nodes(tmp_path, ["a", "b"]) as (a, b):
        before = await a.runtime.loop.status()
        assert before["last_round"] is None
        assert before["peers"] == {}
        assert (before["bytes_sent"], before["bytes_received"]) == (0, 0)

        await a.approve(b)
        await b.approve(a)
        await a.add(*(indicator(v) for v in public_ips(20)))
        await b.add(*(indicator(v) for v in public_ips(5, start=100)))
        started = datetime.now(UTC)
        await a.runtime.loop.round()
        await a.runtime.loop.settle()

        status = await a.runtime.loop.status()
        assert isinstance(status["last_round"], str)
        assert datetime.fromisoformat(status["last_round"]) >= started.replace(microsecond=0)
        peers = status["peers"]
        assert isinstance(peers, dict)
        assert set(peers) == {b.id}
        with_b = peers[b.id]
        assert isinstance(with_b, dict)
        # A pushed 20 reports (more bytes out) and pulled 5 (fewer bytes back, but some).
        sent, received = with_b["bytes_sent"], with_b["bytes_received"]
        assert isinstance(sent, int)
        assert isinstance(received, int)
        assert sent > received > 0
        assert (status["bytes_sent"], status["bytes_received"]) == (sent, received)
        # B started no session, so it called nobody.
        assert (await b.runtime.loop.status())["peers"] == {}


def test_meter_sums_calls_per_peer() -> None:
    meter = TrafficMeter()
    meter.record("p1", sent=10, received=3)
    meter.record("p1", sent=5, received=0)
    meter.record("p2", sent=1, received=100)
    assert meter.peers() == {
        "p1": {"bytes_sent": 15, "bytes_received": 3, "calls": 2},
        "p2": {"bytes_sent": 1, "bytes_received": 100, "calls": 1},
    }
    assert meter.totals() == (16, 103)
