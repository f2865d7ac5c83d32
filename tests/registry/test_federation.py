"""Two federated registries over TLS converge on the same signed entries, adding no trust."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, text

from dtim.registry.client import registry_tls_context
from dtim.registry.federation import Federation
from dtim.registry.records import Outcome
from tests.registry.conftest import Home, LiveRegistry, closed_port, serve_registry, wait_for


@dataclass
class Pair:
    a: LiveRegistry
    b: LiveRegistry
    a_pulls: Federation
    b_pulls: Federation


@pytest.fixture
async def pair(homes: dict[str, Home], tmp_path: Path) -> AsyncIterator[Pair]:
    """Registry A and registry B, each pulling from the other (each trusts the other's CA)."""
    async with (
        serve_registry(homes["registry"], f"sqlite:///{tmp_path}/a.db") as a,
        serve_registry(homes["registry2"], f"sqlite:///{tmp_path}/b.db") as b,
    ):
        a_pulls = Federation(
            a.records, [b.url], verify=registry_tls_context([b.home.ca_pem]), interval_seconds=0.05
        )
        b_pulls = Federation(
            b.records, [a.url], verify=registry_tls_context([a.home.ca_pem]), interval_seconds=0.05
        )
        try:
            yield Pair(a, b, a_pulls, b_pulls)
        finally:
            await a_pulls.close()
            await b_pulls.close()


async def listing(registry: LiveRegistry) -> bytes:
    async with registry.client() as client:
        return (await client._http.get("/api/v1/peers")).content


async def listed_ids(registry: LiveRegistry) -> set[str]:
    async with registry.client() as client:
        page = await client.all_peers()
    assert page.rejected == ()
    return {e.node_id for e in page.entries}


async def test_a_node_registered_at_one_is_listed_by_both(
    pair: Pair, homes: dict[str, Home]
) -> None:
    alice, bob, carol = homes["alice"], homes["bob"], homes["carol"]
    async with pair.a.client() as client:
        await client.register(alice.identity, alice.endpoint)
        await client.register(carol.identity, carol.endpoint)
    async with pair.b.client() as client:
        await client.register(bob.identity, bob.endpoint)
    (from_b,) = await pair.a_pulls.run_once()
    (from_a,) = await pair.b_pulls.run_once()
    assert (from_b.stored, from_a.stored) == (1, 2)
    assert from_a.error is None
    everyone = {alice.identity.node_id, bob.identity.node_id, carol.identity.node_id}
    assert await listed_ids(pair.a) == everyone
    assert await listed_ids(pair.b) == everyone
    # Entries keep their nodes' signatures, byte for byte.
    a_items = {i["node_id"]: i for i in orjson.loads(await listing(pair.a))}
    b_items = {i["node_id"]: i for i in orjson.loads(await listing(pair.b))}
    assert a_items == b_items
    # Nothing echoes back: a second exchange stores nothing.
    again = [*(await pair.a_pulls.run_once()), *(await pair.b_pulls.run_once())]
    assert [r.stored for r in again] == [0, 0]
    assert again[0].outcomes.get(Outcome.STORED, 0) == 0


async def test_withdrawals_and_refreshes_propagate(pair: Pair, homes: dict[str, Home]) -> None:
    alice, bob = homes["alice"], homes["bob"]
    async with pair.a.client() as client:
        await client.register(alice.identity, alice.endpoint)
        await client.register(bob.identity, bob.endpoint)
        await pair.b_pulls.run_once()
        assert await listed_ids(pair.b) == {alice.identity.node_id, bob.identity.node_id}
        await client.withdraw(alice.identity, alice.endpoint)
        refreshed = await client.register(bob.identity, bob.endpoint)
    (report,) = await pair.b_pulls.run_once()
    assert report.stored == 2
    assert await listed_ids(pair.b) == {bob.identity.node_id}
    stored = await pair.b.records.get(bob.identity.node_id)
    assert stored is not None
    assert stored.issued_at == refreshed.issued_at
    assert stored.origin == pair.a.url
    # The old entry cannot come back from A's side either: B's withdrawal is newer.
    (back,) = await pair.a_pulls.run_once()
    assert back.stored == 0
    assert await listed_ids(pair.a) == {bob.identity.node_id}


async def test_a_tampered_entry_does_not_cross(pair: Pair, homes: dict[str, Home]) -> None:
    alice, bob = homes["alice"], homes["bob"]
    async with pair.a.client() as client:
        await client.register(alice.identity, alice.endpoint)
        await client.register(bob.identity, bob.endpoint)
    engine = create_engine(pair.a.database_url)
    with engine.begin() as conn:
        item = orjson.loads(
            conn.execute(
                text("SELECT document FROM registry_entries WHERE node_id = :id"),
                {"id": alice.identity.node_id},
            ).scalar_one()
        )
        item["statement"]["expires_at"] += 600  # keep an entry alive past its node's word
        conn.execute(
            text("UPDATE registry_entries SET document = :d WHERE node_id = :id"),
            {"d": orjson.dumps(item).decode(), "id": alice.identity.node_id},
        )
    engine.dispose()
    (report,) = await pair.b_pulls.run_once()
    assert (report.stored, report.rejected) == (1, 1)
    assert await listed_ids(pair.b) == {bob.identity.node_id}


async def test_the_loops_converge_and_survive_an_unreachable_peer(
    pair: Pair, homes: dict[str, Home]
) -> None:
    alice, bob = homes["alice"], homes["bob"]
    dead = f"https://127.0.0.1:{closed_port()}"
    a_pulls = Federation(
        pair.a.records,
        [dead, pair.b.url],
        verify=registry_tls_context([pair.b.home.ca_pem]),
        interval_seconds=0.02,
        timeout=2,
    )
    async with pair.a.client() as client:
        await client.register(alice.identity, alice.endpoint)
    async with pair.b.client() as client:
        await client.register(bob.identity, bob.endpoint)
    reports = await a_pulls.run_once()
    assert reports[0].error is not None
    assert "unreachable" in reports[0].error
    assert reports[1].stored == 1

    async def converged() -> bool:
        wanted = {alice.identity.node_id, bob.identity.node_id}
        return await listed_ids(pair.a) == wanted and await listed_ids(pair.b) == wanted

    async with asyncio.TaskGroup() as group:
        loops = [group.create_task(a_pulls.run()), group.create_task(pair.b_pulls.run())]
        try:
            await wait_for(converged, what="federated registries to converge")
        finally:
            for loop in loops:
                loop.cancel()
