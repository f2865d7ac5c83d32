"""Nodes discover each other through a real registry, into real stores, as pending peers only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, text

from dtim.crypto.identity import NodeIdentity
from dtim.crypto.nodekeys import NodeKeys
from dtim.errors import ValidationError
from dtim.model.ids import PeerId
from dtim.model.peer import Peer, PeerStatus
from dtim.registry.client import RegistryClient, registry_tls_context
from dtim.registry.discovery import DiscoveryOptions, RegistryDiscovery, registry_loop
from dtim.registry.options import RegistryOptions
from dtim.store import Store
from tests.registry.conftest import (
    NODE_NAMES,
    Home,
    LiveRegistry,
    closed_port,
    serve_registry,
    wait_for,
)

Discover = Callable[..., RegistryDiscovery]


@pytest.fixture
async def discovery(registry: LiveRegistry) -> AsyncIterator[Discover]:
    """Build a node's discovery rounds against the registry; clients are closed afterwards."""
    clients: list[RegistryClient] = []

    def make(home: Home, store: Store, *, opt_in: bool = True) -> RegistryDiscovery:
        clients.append(registry.client())
        options = DiscoveryOptions(registry_url=registry.url, opt_in=opt_in, endpoint=home.endpoint)
        return RegistryDiscovery(clients[-1], store, home.identity, options)

    yield make
    for client in clients:
        await client.close()


async def pending_ids(store: Store) -> set[str]:
    return {p.id for p in await store.list_peers(PeerStatus.PENDING)}


async def test_three_nodes_learn_each_other_as_pending(
    registry: LiveRegistry, homes: dict[str, Home], node_stores: dict[str, Store]
) -> None:
    nodes = [homes[name] for name in NODE_NAMES]
    options = {
        n.name: DiscoveryOptions(
            registry_url=registry.url, opt_in=True, endpoint=n.endpoint, interval_seconds=0.05
        )
        for n in nodes
    }

    async def everyone_knows_everyone() -> bool:
        for node in nodes:
            others = {n.identity.node_id for n in nodes if n is not node}
            if await pending_ids(node_stores[node.name]) != others:
                return False
        return True

    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                registry_loop(
                    options[n.name],
                    identity=n.identity,
                    store=node_stores[n.name],
                    client=registry.client(),
                )
            )
            for n in nodes
        ]
        try:
            await wait_for(everyone_knows_everyone, what="three nodes to discover each other")
        finally:
            for task in tasks:
                task.cancel()

    alice_peers = {str(p.id): p for p in await node_stores["alice"].list_peers()}
    bob = homes["bob"]
    assert alice_peers[bob.identity.node_id] == Peer(
        id=PeerId(bob.identity.node_id),
        endpoint=bob.endpoint,
        public_key=bob.identity.public_key_b64,
        fingerprint=bob.identity.fingerprint,
        status=PeerStatus.PENDING,
        added_at=alice_peers[bob.identity.node_id].added_at,
        source="registry",
    )
    for store in node_stores.values():
        assert await store.list_peers(PeerStatus.APPROVED) == []


async def test_known_peers_are_never_changed_by_the_registry(
    registry: LiveRegistry,
    homes: dict[str, Home],
    node_stores: dict[str, Store],
    discovery: Discover,
) -> None:
    alice, bob, carol = (homes[n] for n in NODE_NAMES)
    for home in (bob, carol):
        await discovery(home, node_stores[home.name]).run_once()
    store = node_stores["alice"]
    rounds = discovery(alice, store)
    first = await rounds.run_once()
    assert set(first.added) == {bob.identity.node_id, carol.identity.node_id}
    await store.set_peer_status(bob.identity.node_id, PeerStatus.APPROVED)
    await store.set_peer_status(carol.identity.node_id, PeerStatus.REJECTED)
    await discovery(bob, node_stores["bob"]).run_once()  # Bob refreshes: a changed entry
    again = await rounds.run_once()
    assert again.seen >= 1
    assert again.added == ()
    statuses = {p.id: p.status for p in await store.list_peers()}
    assert statuses == {
        bob.identity.node_id: PeerStatus.APPROVED,
        carol.identity.node_id: PeerStatus.REJECTED,
    }


async def test_an_entry_tampered_with_in_the_registry_database_is_rejected(
    registry: LiveRegistry,
    homes: dict[str, Home],
    node_stores: dict[str, Store],
    discovery: Discover,
) -> None:
    alice, bob, carol = (homes[n] for n in NODE_NAMES)
    for home in (bob, carol):
        await discovery(home, node_stores[home.name]).run_once()
    # Someone with access to the registry database points Bob's entry at their own server.
    engine = create_engine(registry.database_url)
    with engine.begin() as conn:
        document = conn.execute(
            text("SELECT document FROM registry_entries WHERE node_id = :id"),
            {"id": bob.identity.node_id},
        ).scalar_one()
        item = orjson.loads(document)
        item["endpoint"] = item["statement"]["endpoint"] = "https://evil.example:3030"
        conn.execute(
            text("UPDATE registry_entries SET document = :d WHERE node_id = :id"),
            {"d": orjson.dumps(item).decode(), "id": bob.identity.node_id},
        )
    engine.dispose()
    report = await discovery(alice, node_stores["alice"], opt_in=False).run_once()
    assert report.added == (carol.identity.node_id,)
    assert [(r.node_id, r.reason) for r in report.rejected] == [
        (bob.identity.node_id, "statement bad signature")
    ]
    assert await pending_ids(node_stores["alice"]) == {carol.identity.node_id}


async def test_a_node_that_opts_out_reads_the_list_without_being_listed(
    registry: LiveRegistry,
    homes: dict[str, Home],
    node_stores: dict[str, Store],
    discovery: Discover,
) -> None:
    alice, bob = homes["alice"], homes["bob"]
    await discovery(bob, node_stores["bob"]).run_once()
    report = await discovery(alice, node_stores["alice"], opt_in=False).run_once()
    assert not report.registered
    assert report.added == (bob.identity.node_id,)
    async with registry.client() as client:
        assert [e.node_id for e in (await client.peers()).entries] == [bob.identity.node_id]
    assert await registry.records.get(alice.identity.node_id) is None


async def test_opting_out_later_withdraws_the_entry(
    registry: LiveRegistry,
    homes: dict[str, Home],
    node_stores: dict[str, Store],
    discovery: Discover,
) -> None:
    alice = homes["alice"]
    store = node_stores["alice"]
    assert (await discovery(alice, store).run_once()).registered
    report = await discovery(alice, store, opt_in=False).run_once()
    assert report.withdrawn
    assert report.error is None
    async with registry.client() as client:
        assert (await client.peers()).entries == ()
    # The withdrawal is remembered: the next rounds neither register nor withdraw again.
    again = await discovery(alice, store, opt_in=False).run_once()
    assert not again.withdrawn
    assert not again.registered


async def test_registry_downtime_is_reported_and_leaves_peers_alone(
    registry: LiveRegistry,
    homes: dict[str, Home],
    node_stores: dict[str, Store],
    caplog: pytest.LogCaptureFixture,
    discovery: Discover,
) -> None:
    alice, bob = homes["alice"], homes["bob"]
    store = node_stores["alice"]
    approved = Peer(
        id=PeerId(bob.identity.node_id),
        endpoint=bob.endpoint,
        public_key=bob.identity.public_key_b64,
        fingerprint=bob.identity.fingerprint,
        status=PeerStatus.APPROVED,
        added_at=datetime.now(UTC),
        source="manual",
    )
    await store.save_peer(approved)
    down_url = f"https://127.0.0.1:{closed_port()}"
    verify = registry_tls_context([registry.home.ca_pem])
    options = DiscoveryOptions(
        registry_url=down_url, opt_in=True, endpoint=alice.endpoint, interval_seconds=0.01
    )
    async with RegistryClient(down_url, verify=verify, timeout=2) as probe:
        report = await RegistryDiscovery(probe, store, alice.identity, options).run_once()
    assert report.error is not None
    assert "unreachable" in report.error
    caplog.set_level(logging.WARNING, logger="dtim.registry")

    async def failed_rounds() -> bool:
        return sum("unreachable" in r.getMessage() for r in caplog.records) >= 3

    # The loop goes on through failed rounds; it never ends on its own.
    async with asyncio.TaskGroup() as group:
        loop = group.create_task(
            registry_loop(
                options,
                identity=alice.identity,
                store=store,
                client=RegistryClient(down_url, verify=verify, timeout=2),
            )
        )
        try:
            await wait_for(failed_rounds, what="several failed rounds")
            assert not loop.done()
        finally:
            loop.cancel()
    # Peers are exactly as they were; when the registry answers again, rounds succeed.
    assert await store.list_peers() == [approved]
    recovered = await discovery(alice, store).run_once()
    assert recovered.registered
    assert recovered.error is None
    assert await store.list_peers() == [approved]


async def test_opting_in_needs_an_endpoint(
    registry: LiveRegistry, node_stores: dict[str, Store]
) -> None:
    options = DiscoveryOptions(registry_url=registry.url, opt_in=True, endpoint="")
    with pytest.raises(ValidationError, match="public_endpoint"):
        RegistryDiscovery(registry.client(), node_stores["alice"], NodeIdentity.generate(), options)


async def test_rounds_follow_the_registry_heartbeat_from_the_first_round(
    homes: dict[str, Home], node_stores: dict[str, Store], tmp_path: Path
) -> None:
    alice = homes["alice"]
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:
            raise asyncio.CancelledError

    heartbeat = 20.0
    chosen = RegistryOptions(list_cache_seconds=0, heartbeat_seconds=heartbeat)
    async with serve_registry(homes["registry"], f"sqlite:///{tmp_path}/hb.db", chosen) as live:
        options = DiscoveryOptions(registry_url=live.url, opt_in=True, endpoint=alice.endpoint)
        client = live.client()
        try:
            rounds = RegistryDiscovery(
                client, node_stores["alice"], alice.identity, options, sleep=sleep
            )
            with pytest.raises(asyncio.CancelledError):
                await rounds.run()
        finally:
            await client.close()
    # Both waits, the first included, follow the heartbeat the registry announced.
    assert len(delays) == 2
    assert all(0.9 * heartbeat <= delay <= 1.1 * heartbeat for delay in delays), delays


async def test_after_an_identity_rollover_the_entry_moves_to_the_new_key(
    registry: LiveRegistry, homes: dict[str, Home], node_stores: dict[str, Store]
) -> None:
    alice, store = homes["alice"], node_stores["alice"]
    old = alice.identity
    keys = NodeKeys(old)
    options = DiscoveryOptions(registry_url=registry.url, opt_in=True, endpoint=alice.endpoint)
    async with registry.client() as client:
        rounds = RegistryDiscovery(client, store, keys, options)
        assert (await rounds.run_once()).registered
        new = NodeIdentity.generate()
        keys.adopt(
            new,
            retired={old.node_id: old},
            aliases={old.node_id: old.public_key_b64},
            known={},
        )
        report = await rounds.run_once()
        assert report.error is None
        assert report.registered
        async with registry.client() as reader:
            listed = {entry.node_id for entry in (await reader.peers()).entries}
        assert listed == {new.node_id}
        assert await pending_ids(store) == set()


async def test_a_node_never_takes_its_own_entry_from_before_a_rollover_for_a_peer(
    registry: LiveRegistry, homes: dict[str, Home], node_stores: dict[str, Store]
) -> None:
    alice, store = homes["alice"], node_stores["alice"]
    old = alice.identity
    keys = NodeKeys(old)
    options = DiscoveryOptions(registry_url=registry.url, opt_in=True, endpoint=alice.endpoint)
    async with registry.client() as client:
        rounds = RegistryDiscovery(client, store, keys, options)
        assert (await rounds.run_once()).registered
        # The retired key file is gone: its entry cannot be withdrawn and holds the endpoint
        # until it expires, so the new key cannot register yet.
        keys.adopt(
            NodeIdentity.generate(),
            retired={},
            aliases={old.node_id: old.public_key_b64},
            known={},
        )
        restarted = RegistryDiscovery(client, store, keys, options)  # reads the list from 0
        report = await restarted.run_once()
        assert not report.registered
        assert report.error is not None
        assert "endpoint" in report.error
        assert report.seen == 1  # the old entry is listed ...
        assert await pending_ids(store) == set()  # ... and is not a peer
