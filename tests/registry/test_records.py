"""The registry database: newest statement wins, endpoints are unique, pages never lose entries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from dtim.crypto.identity import NodeIdentity
from dtim.registry.records import Outcome, RegistryRecords
from dtim.registry.statements import SignedStatement, Statement, StatementKind, sign_statement

NOW = 1_780_000_000


def signed(
    identity: NodeIdentity,
    *,
    endpoint: str = "",
    issued: int = NOW,
    lifetime: int = 900,
    kind: StatementKind = StatementKind.ENTRY,
) -> SignedStatement:
    url = endpoint or f"https://{identity.node_id[:12]}.example:3030"
    statement = Statement(kind, identity.public_key_b64, url, issued, issued + lifetime)
    return sign_statement(statement, identity)


@pytest.fixture
async def records(registry_db: str) -> AsyncIterator[RegistryRecords]:
    opened = RegistryRecords(registry_db)
    await opened.connect()
    try:
        yield opened
    finally:
        await opened.close()


async def listed(records: RegistryRecords, now: int = NOW) -> list[str]:
    page = await records.peers(since=0, limit=1000, now=now)
    return [orjson.loads(doc)["node_id"] for doc in page.documents]


async def test_newest_statement_wins_and_replays_change_nothing(records: RegistryRecords) -> None:
    alice = NodeIdentity.generate()
    first, second = signed(alice), signed(alice, issued=NOW + 10)
    assert await records.apply(first, origin="", now=NOW) is Outcome.STORED
    assert await records.apply(first, origin="", now=NOW) is Outcome.UNCHANGED
    assert await records.apply(second, origin="", now=NOW) is Outcome.STORED
    assert await records.apply(first, origin="", now=NOW) is Outcome.STALE
    stored = await records.get(alice.node_id)
    assert stored is not None
    assert stored.issued_at == NOW + 10
    assert stored.document == second.document()


async def test_direct_registrations_need_a_strictly_newer_time(records: RegistryRecords) -> None:
    alice = NodeIdentity.generate()
    await records.apply(signed(alice), origin="", now=NOW)
    other_same_second = signed(alice, lifetime=600)
    assert await records.apply(other_same_second, origin="", now=NOW) is Outcome.STALE
    # Federation settles the same tie the same way everywhere instead.
    expected = max(signed(alice), other_same_second, key=SignedStatement.order_key)
    outcome = await records.apply(other_same_second, origin="x", now=NOW, strict=False)
    assert outcome is (Outcome.STORED if expected is other_same_second else Outcome.STALE)


async def test_an_endpoint_belongs_to_one_live_key(records: RegistryRecords) -> None:
    alice, mallory = NodeIdentity.generate(), NodeIdentity.generate()
    url = "https://alice.example:3030"
    assert await records.apply(signed(alice, endpoint=url), origin="", now=NOW) is Outcome.STORED
    claim = signed(mallory, endpoint=url)
    assert await records.apply(claim, origin="", now=NOW) is Outcome.ENDPOINT_TAKEN
    assert await listed(records) == [alice.node_id]
    # Once Alice's entry has expired, the endpoint is free again (the node re-keyed).
    later = signed(mallory, endpoint=url, issued=NOW + 1000)
    assert await records.apply(later, origin="", now=NOW + 1000) is Outcome.STORED


async def test_withdrawals_hide_entries_but_travel_to_federation(records: RegistryRecords) -> None:
    alice, bob = NodeIdentity.generate(), NodeIdentity.generate()
    await records.apply_many([signed(alice), signed(bob)], origin="", now=NOW)
    gone = signed(alice, issued=NOW + 5, kind=StatementKind.WITHDRAWAL)
    assert await records.apply(gone, origin="", now=NOW) is Outcome.STORED
    assert await listed(records) == [bob.node_id]
    feed = await records.entries(since=0, limit=10, now=NOW)
    kinds = [orjson.loads(doc)["statement"]["type"] for doc in feed.documents]
    assert kinds == ["dtim-registry-entry", "dtim-registry-withdrawal"]
    # The older entry cannot come back through a replay.
    assert (
        await records.apply(signed(alice), origin="elsewhere", now=NOW, strict=False)
        is Outcome.STALE
    )


async def test_pages_follow_the_change_order_without_losing_refreshed_entries(
    records: RegistryRecords,
) -> None:
    nodes = [NodeIdentity.generate() for _ in range(7)]
    await records.apply_many([signed(n) for n in nodes], origin="", now=NOW)
    first = await records.peers(since=0, limit=3, now=NOW)
    assert first.full
    assert len(first.documents) == 3
    # nodes[0] (already seen) and nodes[4] (not yet seen) refresh while the reader pages.
    await records.apply_many(
        [signed(nodes[0], issued=NOW + 1), signed(nodes[4], issued=NOW + 1)], origin="", now=NOW
    )
    seen = [orjson.loads(d)["node_id"] for d in first.documents]
    since = first.next_since
    while True:
        page = await records.peers(since=since, limit=3, now=NOW)
        seen += [orjson.loads(d)["node_id"] for d in page.documents]
        since = page.next_since
        if not page.full:
            break
    assert set(seen) == {n.node_id for n in nodes}
    assert (await records.peers(since=since, limit=3, now=NOW)).documents == ()


async def test_expired_entries_are_not_listed_and_are_pruned(records: RegistryRecords) -> None:
    alice, bob = NodeIdentity.generate(), NodeIdentity.generate()
    await records.apply_many([signed(alice, lifetime=100), signed(bob)], origin="", now=NOW)
    assert await listed(records, now=NOW + 100) == [bob.node_id]
    assert await records.count_live(NOW + 100) == 1
    assert await records.prune(NOW + 100) == 1
    assert await records.get(alice.node_id) is None


async def test_federation_cursors_and_the_instance_id_persist(registry_db: str) -> None:
    async with RegistryRecords(registry_db) as records:
        instance = await records.instance()
        await records.save_cursor("https://other.example:3040", "abc", 42, NOW)
        await records.apply(signed(NodeIdentity.generate()), origin="", now=NOW)
    async with RegistryRecords(registry_db) as reopened:
        assert await reopened.instance() == instance
        assert await reopened.cursor("https://other.example:3040") == ("abc", 42)
        assert await reopened.cursor("https://unknown.example") is None
        assert await reopened.count_live(NOW) == 1


@pytest.mark.parametrize(
    ("query", "search"),
    [
        ("peers", "(kind=? AND seq>?)"),
        ("entries", "(seq>?)"),
        ("endpoint holder", "(endpoint=? AND kind=?)"),
    ],
)
async def test_hot_queries_are_single_index_searches(
    tmp_path: object, query: str, search: str
) -> None:
    from sqlalchemy.dialects import sqlite

    from dtim.registry import records as module

    statement = {
        "peers": module._PEERS_PAGE,
        "entries": module._ENTRIES_PAGE,
        "endpoint holder": module._ENDPOINT_HOLDER,
    }[query]
    params = {"since": 0, "limit": 500, "now": NOW, "endpoint": "https://x", "node_id": "y"}
    async with RegistryRecords(f"sqlite:///{tmp_path}/plan.db") as records:
        nodes = [NodeIdentity.generate() for _ in range(50)]
        await records.apply_many([signed(n) for n in nodes], origin="", now=NOW)
        compiled = statement.compile(dialect=sqlite.dialect())
        sql = str(compiled)
        bound = {**compiled.params, **params}
        values = [bound[name] for name in compiled.positiontup or ()]
        with records.engine.connect() as conn:
            plan = [
                row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(values))
            ]
    assert len(plan) == 1, plan
    assert plan[0].startswith("SEARCH registry_entries USING INDEX"), plan
    assert plan[0].endswith(search), plan
