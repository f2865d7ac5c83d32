"""Gossip rounds between real nodes in this process: HTTPS with mTLS and signed requests,
push-pull reconciliation over per-peer views, back-off, quotas, audit and restarts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dtim.config import Settings
from dtim.errors import PeerRejected, PeerUnreachable
from dtim.gossip.client import run_session
from dtim.gossip.peers import set_status
from dtim.gossip.report import Report
from dtim.model import PeerId, PeerStatus
from tests.gossip.localnode import LocalNode, indicator, local_nodes, public_ips


async def rounds(*nodes: LocalNode, times: int = 1) -> None:
    """Run ``times`` rounds on every node, waiting for their sessions each time."""
    for _ in range(times):
        for node in nodes:
            await node.runtime.loop.round()
        for node in nodes:
            await node.runtime.loop.settle()


def view_values(node: LocalNode, peer: LocalNode) -> set[str]:
    """Values of the reports in ``node``'s view for ``peer``."""
    groups = node.runtime.directory.get(peer.id)
    view = node.runtime.loop.index.view_for(
        peer.id, groups.groups if groups else (), datetime.now(UTC)
    )
    return {r.value for r in view.items.values() if isinstance(r, Report)}


async def mesh(nodes: list[LocalNode]) -> None:
    for node in nodes:
        for other in nodes:
            if other is not node:
                await node.approve(other)


async def test_push_pull_converges_both_ways(tmp_path: Path) -> None:
    async with local_nodes(tmp_path, ["a", "b"]) as (a, b):
        await mesh([a, b])
        mine, theirs = public_ips(30), public_ips(20, start=100)
        await a.add(*(indicator(v) for v in mine))
        await b.add(*(indicator(v) for v in theirs))
        chosen = await a.runtime.loop.round()
        await a.runtime.loop.settle()
        assert [p.id for p in chosen] == [b.id]
        assert await a.values() == await b.values() == set(mine) | set(theirs)
        received = await b.store.find_indicator("ipv4", mine[0])
        assert received is not None
        assert received.sources == ("gossip",)
        assert received.confidence == 40  # one reporter alone is capped at 40
        again = await run_session(
            a.runtime.transport,
            b.as_peer(),
            a.runtime.loop.index.view_for(b.id, (), datetime.now(UTC)),
            a.runtime.loop.inbox,
        )
        assert (again.pushed, again.pulled) == (0, 0)  # converged: an idle session moves nothing
        assert again.reconcile_bytes < 2048


async def test_red_and_amber_reach_only_named_recipients_and_are_never_relayed(
    tmp_path: Path,
) -> None:
    async with local_nodes(tmp_path, ["a", "b", "c"]) as (a, b, c):
        await mesh([a, b, c])
        await a.approve(b, groups=["partners"])  # b is in a's group "partners"
        red, amber, green = public_ips(3)
        await a.add(
            indicator(red, tlp="red", recipients=[b.id]),
            indicator(amber, tlp="amber", recipients=["partners"]),
            indicator(green),
        )
        await rounds(a, b, c, times=3)
        assert await b.values() == {red, amber, green}
        assert await c.values() == {green}
        stored = await b.store.find_indicator("ipv4", red)
        assert stored is not None
        assert stored.recipients == ()
        assert view_values(b, c) == {green}
        assert view_values(a, c) == {green}
        assert view_values(a, b) == {red, amber, green}


async def test_unapproved_node_is_refused_and_revocation_cuts_off_at_once(
    tmp_path: Path,
) -> None:
    async with local_nodes(tmp_path, ["a", "b", "x"]) as (a, b, x):
        await mesh([a, b])
        await x.approve(a)  # x knows a, but a never approved x
        await x.add(indicator("45.155.9.9"))
        with pytest.raises((PeerRejected, PeerUnreachable)):
            await run_session(
                x.runtime.transport,
                a.as_peer(),
                x.runtime.loop.index.view_for(a.id, (), datetime.now(UTC)),
                x.runtime.loop.inbox,
            )
        assert "45.155.9.9" not in await a.values()

        await b.add(indicator("45.155.9.10"))
        await rounds(b)
        assert "45.155.9.10" in await a.values()
        await set_status(a.store, a.runtime.items, b.id, PeerStatus.REVOKED, now=datetime.now(UTC))
        await b.add(indicator("45.155.9.11"))
        # No restart: a notices within a second; b's very next session is refused.
        deadline = asyncio.get_running_loop().time() + 3
        while True:
            try:
                await run_session(
                    b.runtime.transport,
                    a.as_peer(),
                    b.runtime.loop.index.view_for(a.id, (), datetime.now(UTC)),
                    b.runtime.loop.inbox,
                )
            except (PeerRejected, PeerUnreachable):
                break
            assert asyncio.get_running_loop().time() < deadline, "revoked peer still accepted"
            await asyncio.sleep(0.2)
        assert "45.155.9.11" not in await a.values()
        await a.runtime.directory.refresh(force=True)
        assert b.id not in {p.id for p in a.runtime.loop.candidates()}


@asynccontextmanager
async def blackhole() -> AsyncIterator[str]:
    """A TCP port that accepts connections and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


async def test_a_dead_peer_never_stalls_a_round_and_backs_off(tmp_path: Path) -> None:
    quick = Settings()
    quick = replace(quick, network=replace(quick.network, request_timeout_seconds=1.0))
    async with local_nodes(tmp_path, ["a", "b", "dead"], settings=quick) as (a, b, dead):
        await mesh([a, b])
        async with blackhole() as url:
            await a.approve(dead)
            await a.store.save_peer(replace(dead.as_peer(), endpoint=url))
            await a.runtime.directory.refresh(force=True)
            await a.add(indicator("45.155.8.8"))
            started = asyncio.get_running_loop().time()
            chosen = await a.runtime.loop.round()
            assert {p.id for p in chosen} == {b.id, dead.id}
            assert asyncio.get_running_loop().time() - started < 0.5  # sessions run on their own
            deadline = started + 5
            while "45.155.8.8" not in await b.values():
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            assert dead.id in a.runtime.loop._busy  # still waiting for the dead one
            await a.runtime.loop.settle()
        assert {p.id for p in a.runtime.loop.candidates()} == {b.id}  # dead backs off


async def test_each_peer_brings_at_most_its_quota_of_new_reports_per_round(
    tmp_path: Path,
) -> None:
    small = Settings()
    small = replace(small, network=replace(small.network, max_new_reports_per_peer=10))
    async with local_nodes(tmp_path, ["a", "b"], settings=small) as (a, b):
        await mesh([a, b])
        await a.add(*(indicator(v) for v in public_ips(25)))
        counts = []
        for _ in range(3):
            await rounds(b)
            counts.append(len(await b.values()))
        assert counts == [10, 20, 25]


async def test_warninglisted_reports_are_refused_and_counted_against_the_sender(
    tmp_path: Path,
) -> None:
    async with local_nodes(tmp_path, ["a", "b"]) as (a, b):
        await mesh([a, b])
        bad = [indicator("10.1.2.3"), indicator("8.8.8.8")]  # private; public DNS resolver
        good = indicator("45.155.7.7")
        view = a.runtime.loop.index
        for item in (*bad, good):
            view.set_local(item)
        reports = list(view.view_for(b.id, (), datetime.now(UTC)).items.values())
        assert len(reports) == 1  # a's own filter already withholds the bad ones
        genuine = reports[0]
        assert isinstance(genuine, Report)
        forged = [replace(genuine, indicator=i.id, value=i.value) for i in bad]  # filter skipped
        taken = await a.runtime.transport.push(b.as_peer(), [*forged, reports[0]])
        assert taken == 1
        assert await b.values() == {"45.155.7.7"}
        refused = [
            r
            for day in b.audit.days()
            for r in b.audit.read(day)
            if r.get("event") == "items_refused"
        ]
        assert refused
        assert refused[0]["peer"] == a.id
        assert refused[0]["count"] == 2
        standing = b.runtime.loop.reputation.standing(PeerId(a.id))  # type: ignore[union-attr]
        assert standing.parts["invalid"] < 0


async def test_audit_log_records_which_indicators_went_to_which_peer(tmp_path: Path) -> None:
    async with local_nodes(tmp_path, ["a", "b"]) as (a, b):
        await mesh([a, b])
        sent = [indicator(v) for v in public_ips(5)]
        await a.add(*sent)
        await rounds(a)
        shared = [
            r
            for day in a.audit.days()
            for r in a.audit.read(day)
            if r.get("event") == "indicators_shared"
        ]
        assert shared, "nothing recorded"
        assert {r["peer"] for r in shared} == {b.id}
        ids: set[object] = set()
        for r in shared:
            listed = r["indicators"]
            assert isinstance(listed, list)
            ids.update(listed)
        assert ids == {s.id for s in sent}
        assert all(r["round"] == 1 for r in shared)


async def test_received_items_survive_a_restart(tmp_path: Path) -> None:
    async with local_nodes(tmp_path, ["a", "b"]) as (a, b):
        await mesh([a, b])
        await a.add(*(indicator(v) for v in public_ips(4)))
        await rounds(a)
        before = set(b.runtime.loop.index.view_for(a.id, (), datetime.now(UTC)).items)
        assert len(before) == 4
        from dtim.service import build_gossip

        again = await build_gossip(b.home, b.store, b.identity, b.audit, b.runtime.loop.clock)
        try:
            after = set(again.loop.index.view_for(a.id, (), datetime.now(UTC)).items)
        finally:
            await again.close()
        assert after == before


def test_public_ips_are_distinct_and_public() -> None:
    values = public_ips(600)
    assert len(set(values)) == 600
    assert all(not socket.inet_aton(v).startswith(b"\x0a") for v in values)


async def test_own_reports_walk_the_stem_before_the_origin_offers_them(tmp_path: Path) -> None:
    async with local_nodes(tmp_path, ["a", "b", "c"], origin_hiding=True) as nodes:
        a, b, c = nodes
        await mesh(nodes)
        for node in nodes:
            await node.runtime.loop.round()  # routers learn their peers
            await node.runtime.loop.settle()
        value = "45.155.6.6"
        await a.add(indicator(value))
        await a.runtime.loop.publish()
        # The origin keeps its own report out of every view while it is on the stem ...
        assert value not in view_values(a, b) | view_values(a, c)
        await a.runtime.loop.settle()  # ... and pushed it to one stem successor
        assert value in (await b.values()) | (await c.values())
        shared = [r for r in a.audit.read(datetime.now(UTC).date()) if r.get("via") == "stem"]
        assert len(shared) == 1
        assert shared[0]["peer"] in {b.id, c.id}
        # Once the stem ends (a loop, a diffuser, or a timer), ordinary gossip spreads it.
        deadline = asyncio.get_running_loop().time() + 30
        while not all([value in await n.values() for n in nodes]):
            assert asyncio.get_running_loop().time() < deadline, "report never fluffed"
            await rounds(a, b, c)


async def test_a_quarantined_peer_is_refused_until_a_person_approves_it_again(
    tmp_path: Path,
) -> None:
    async with local_nodes(tmp_path, ["a", "b"]) as (a, b):
        await mesh([a, b])
        reputation = a.runtime.loop.reputation
        assert reputation is not None
        reputation.record_invalid(PeerId(b.id), 10)  # squared penalty: far below the threshold
        assert PeerId(b.id) in reputation.quarantined()
        assert b.id not in {p.id for p in a.runtime.loop.candidates()}
        status = await a.runtime.loop.status()
        assert status["quarantined"] == [b.id]

        async def session() -> None:
            await run_session(
                b.runtime.transport,
                a.as_peer(),
                b.runtime.loop.index.view_for(a.id, (), datetime.now(UTC)),
                b.runtime.loop.inbox,
            )

        with pytest.raises(PeerRejected, match="quarantined"):
            await session()
        await set_status(a.store, a.runtime.items, b.id, PeerStatus.APPROVED, now=datetime.now(UTC))
        await a.runtime.directory.refresh(force=True)
        assert PeerId(b.id) not in reputation.quarantined()
        await session()  # accepted again
