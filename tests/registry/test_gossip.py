"""From the registry to gossip: discovered as pending, approved by a person, then gossiping.

The nodes are real (peer API over mutual TLS, gossip runtime, stores), started
in this loop by the gossip suite's harness; they find each other only through a
real registry over TLS.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dtim.gossip.peers import set_status
from dtim.gossip.transport import NodeInfo, fetch_node_info
from dtim.model.peer import PeerStatus
from dtim.registry.discovery import DiscoveryOptions, RegistryDiscovery
from tests.gossip.localnode import LocalNode, indicator, local_nodes, public_ips
from tests.registry.conftest import Home, serve_registry


async def fetch(url: str) -> NodeInfo:
    return await fetch_node_info(url, seconds=5)


async def approve(node: LocalNode, other: LocalNode) -> None:
    """What `dtim peers approve` does after a person compared the fingerprint."""
    peer = await node.store.get_peer(other.id)
    assert peer is not None
    assert peer.fingerprint == other.identity.fingerprint  # the comparison made out of band
    await set_status(
        node.store,
        node.runtime.items,
        other.id,
        PeerStatus.APPROVED,
        now=datetime.now(UTC),
        fetch=fetch,
    )
    await node.runtime.directory.refresh(force=True)


async def test_discovered_peers_gossip_once_approved(
    homes: dict[str, Home], tmp_path: Path
) -> None:
    async with (
        serve_registry(homes["registry"], f"sqlite:///{tmp_path}/registry.db") as registry,
        local_nodes(tmp_path / "nodes", ["a", "b", "c"]) as nodes,
    ):
        rounds = []
        for node in nodes:
            options = DiscoveryOptions(registry_url=registry.url, opt_in=True, endpoint=node.url)
            rounds.append(RegistryDiscovery(registry.client(), node.store, node.identity, options))
        try:
            for _ in range(2):  # the first round registers; by the second everyone is listed
                for discovery in rounds:
                    report = await discovery.run_once()
                    assert report.error is None
        finally:
            for discovery in rounds:
                await discovery.client.close()
        a, b, c = nodes
        for node in nodes:
            pending = await node.store.list_peers(PeerStatus.PENDING)
            assert {p.id for p in pending} == {o.id for o in nodes if o is not node}
            assert all(p.source == "registry" for p in pending)
        # Nothing flows while the peers are only pending.
        await a.add(*(indicator(v) for v in public_ips(5)))
        assert await a.runtime.loop.round() == []
        # A person approves a <-> b; c stays pending on both sides.
        await approve(a, b)
        await approve(b, a)
        chosen = await a.runtime.loop.round()
        await a.runtime.loop.settle()
        assert [p.id for p in chosen] == [b.id]
        assert await b.values() == set(public_ips(5))
        assert await c.values() == set()
        assert {p.status for p in await a.store.list_peers()} == {
            PeerStatus.APPROVED,
            PeerStatus.PENDING,
        }
