from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dtim.errors import StoreError
from dtim.model import (
    Evidence,
    FakeClock,
    Peer,
    PeerId,
    PeerStatus,
    Sighting,
    TailPosition,
    Tlp,
    make_indicator,
)
from dtim.store import IndicatorQuery, IndicatorSearch, Store
from dtim.store.rows import INDICATOR_COLUMNS, indicator_row
from dtim.store.tables import indicators

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_upsert_merges_sightings_times_and_tags(store: Store) -> None:
    first = make_indicator("198.51.100.7", now=NOW, tags=["scanner"], sources=["ufw"])
    second = make_indicator(
        "198.51.100.7",
        now=NOW + timedelta(hours=1),
        tags=["ssh"],
        sightings=2,
        sources=["fail2ban"],
    )
    earlier = make_indicator("198.51.100.7", now=NOW - timedelta(hours=5))
    assert await store.upsert_indicators([first]) == 1
    await store.upsert_indicators([second, earlier])
    stored = await store.find_indicator("ipv4", "198.51.100.7")
    assert stored is not None
    assert stored.sightings == 4
    assert stored.first_seen == NOW - timedelta(hours=5)
    assert stored.last_seen == NOW + timedelta(hours=1)
    assert stored.tags == ("scanner", "ssh")
    assert stored.sources == ("fail2ban", "ufw")
    assert await store.get_indicator(first.id) == stored


async def test_every_change_bumps_the_sequence(store: Store) -> None:
    a = make_indicator("a.example", now=NOW)
    b = make_indicator("b.example", now=NOW)
    await store.upsert_indicators([a, b])
    mark = await store.last_seq()
    assert [i.value for _, i in await store.changed_since(0)] == ["a.example", "b.example"]
    assert await store.changed_since(mark) == []
    await store.upsert_indicators([make_indicator("a.example", now=NOW, tags=["new"])])
    changed = await store.changed_since(mark)
    assert [(seq > mark, i.value, i.tags) for seq, i in changed] == [(True, "a.example", ("new",))]


def test_positional_rows_name_every_column_of_the_table() -> None:
    assert tuple(column.name for column in indicators.columns) == INDICATOR_COLUMNS
    row = indicator_row(make_indicator("10.1.0.0/16", now=NOW), 7)
    assert list(row) == list(INDICATOR_COLUMNS)
    assert row["seq"] == 7
    assert row["net_lo"] is not None


async def test_bulk_upsert_over_several_statements_merges_into_stored_rows(store: Store) -> None:
    values = [f"203.0.113.{i % 250}" if i < 250 else f"host{i}.bulk.example" for i in range(5000)]
    first = [
        make_indicator(
            value,
            now=NOW,
            tags=["a"],
            custom_fields={"n": i},
            tlp=Tlp.AMBER,
            recipients=["partners"],
        )
        for i, value in enumerate(values[::2])
    ]
    assert await store.upsert_indicators(first) == len(first)
    second = [make_indicator(value, now=NOW + timedelta(hours=1), tags=["b"]) for value in values]
    assert await store.upsert_indicators(second) == len(values)
    merged = await store.find_indicator("domain", "host1000.bulk.example")
    assert merged is not None
    assert merged.sightings == 2
    assert merged.tags == ("a", "b")
    assert merged.custom_fields == {"n": 500}
    assert merged.recipients == ("partners",)
    assert merged.first_seen == NOW
    assert merged.last_seen == NOW + timedelta(hours=1)
    fresh = await store.find_indicator("domain", "host1001.bulk.example")
    assert fresh is not None
    assert fresh.sightings == 1
    assert fresh.tags == ("b",)
    found = await store.search_indicators(IndicatorSearch(text="203.0.113.0/24", limit=500))
    assert len(found.items) == 250


async def test_list_filters_and_keyset_pages(store: Store) -> None:
    items = [
        make_indicator(f"203.0.113.{n}", now=NOW, confidence=n, tlp="amber" if n % 2 else "green")
        for n in range(1, 21)
    ]
    items.append(make_indicator("evil.example", now=NOW, confidence=90, sources=["nginx_access"]))
    await store.upsert_indicators(items)
    assert len(await store.list_indicators(IndicatorQuery(type="ipv4", limit=100))) == 20
    amber = await store.list_indicators(IndicatorQuery(tlp="amber", limit=100))
    assert {i.tlp for i in amber} == {Tlp.AMBER}
    assert len(amber) == 10
    assert [
        i.value for i in await store.list_indicators(IndicatorQuery(min_confidence=19, limit=100))
    ] == ["evil.example", "203.0.113.20", "203.0.113.19"]
    assert [
        i.value for i in await store.list_indicators(IndicatorQuery(source="nginx_access"))
    ] == ["evil.example"]
    assert (
        len(await store.list_indicators(IndicatorQuery(value_prefix="203.0.113.1", limit=100)))
        == 11
    )
    assert await store.list_indicators(IndicatorQuery(value_prefix="%")) == []
    page1 = await store.list_indicators(IndicatorQuery(limit=8))
    seq_of_last = max(s for s, i in await store.changed_since(0, 100) if i.id == page1[-1].id)
    page2 = await store.list_indicators(IndicatorQuery(limit=8, before_seq=seq_of_last))
    assert not {i.id for i in page1} & {i.id for i in page2}
    counts = await store.counts()
    assert counts.total == 21
    assert counts.by_type == {"ipv4": 20, "domain": 1}
    assert counts.by_tlp == {"amber": 10, "green": 11}
    assert counts.by_source == {"unknown": 20, "nginx_access": 1}


async def test_replace_and_delete(store: Store) -> None:
    item = make_indicator("evil.example", now=NOW)
    await store.upsert_indicators([item])
    edited = item.__class__(
        **{
            **{f: getattr(item, f) for f in item.__dataclass_fields__},
            "tlp": Tlp.RED,
            "recipients": ("peer-1",),
        }
    )
    await store.replace_indicator(edited)
    assert (await store.get_indicator(item.id)) == edited
    assert await store.delete_indicator(item.id) is True
    assert await store.delete_indicator(item.id) is False
    assert await store.get_indicator(item.id) is None


async def test_sightings_and_positions_commit_together(store: Store, clock: FakeClock) -> None:
    indicator = make_indicator("198.51.100.9", now=clock.now(), sources=["ufw"])
    sighting = Sighting(
        indicator, "ufw", "port-scan", clock.now(), count=12, evidence=Evidence(lines=("line",))
    )
    position = TailPosition("ufw", "/var/log/ufw.log", 42, 1234, "ab" * 8)
    await store.record_sightings([sighting, sighting], [b"sealed-1", None], [position])
    assert await store.get_position("ufw", "/var/log/ufw.log") == position
    stored = await store.sightings_for(indicator.id)
    assert [(s.rule, s.count, s.sealed_evidence) for s in stored] == [
        ("port-scan", 12, b"sealed-1"),
        ("port-scan", 12, None),
    ]
    assert (await store.get_indicator(indicator.id)).sightings == 2  # type: ignore[union-attr]
    moved = TailPosition("ufw", "/var/log/ufw.log", 42, 2000, "ab" * 8)
    await store.record_sightings([], positions=[moved])
    assert await store.get_position("ufw", "/var/log/ufw.log") == moved
    with pytest.raises(StoreError, match="one to one"):
        await store.record_sightings([sighting], [b"a", b"b"])


async def test_a_failed_write_leaves_nothing_behind(store: Store) -> None:
    good = make_indicator("good.example", now=NOW)
    await store.upsert_indicators([good])
    before = await store.last_seq()
    bad = Sighting(
        make_indicator("bad.example", now=NOW), "x" * 500, "rule", NOW
    )  # source too long for PostgreSQL; SQLite ignores lengths
    position = TailPosition("w", "p", 1, 1, "f")
    try:
        await store.record_sightings([bad], positions=[position])
    except StoreError:
        assert await store.find_indicator("domain", "bad.example") is None
        assert await store.get_position("w", "p") is None
        assert await store.last_seq() == before
    else:
        assert store.dialect == "sqlite"


async def test_peers(store: Store) -> None:
    peer = Peer(
        PeerId("a" * 64),
        "https://peer.example:3030",
        "",
        "SHA256:x",
        PeerStatus.PENDING,
        NOW,
        groups=("isac",),
        source="registry",
    )
    await store.save_peer(peer)
    assert await store.get_peer(peer.id) == peer
    approved = await store.set_peer_status(peer.id, PeerStatus.APPROVED)
    assert approved.status is PeerStatus.APPROVED
    assert [p.id for p in await store.list_peers(PeerStatus.APPROVED)] == [peer.id]
    assert await store.list_peers(PeerStatus.PENDING) == []
    with pytest.raises(StoreError, match="no peer"):
        await store.set_peer_status("nope", PeerStatus.REVOKED)


async def test_state_round_trips_json(store: Store) -> None:
    assert await store.get_state("k") is None
    await store.set_state("k", {"a": [1, 2, "x"]})
    await store.set_state("k", {"a": [3]})
    assert await store.get_state("k") == {"a": [3]}


async def test_migrations_are_idempotent(store_url: str) -> None:
    for _ in range(2):
        async with Store(store_url) as again:
            assert await again.last_seq() == 0


async def test_store_errors_are_translated(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        async with Store(f"sqlite:///{blocker}/sub/dtim.db"):
            pass
    with pytest.raises(StoreError, match="unsupported database URL"):
        await Store("mysql://root:hunter2@db/x").connect()
    not_connected = Store("sqlite:///x.db")
    with pytest.raises(StoreError, match="not connected"):
        await not_connected.last_seq()


def _writer(url: str, worker: int, rounds: int) -> None:
    import asyncio

    async def go() -> None:
        async with Store(url) as store:
            for n in range(rounds):
                shared = make_indicator("shared.example", now=NOW, tags=[f"w{worker}"])
                own = make_indicator(f"w{worker}-{n}.example", now=NOW)
                await store.upsert_indicators([shared, own])

    asyncio.run(go())


def test_two_processes_writing_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    rounds = 40
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(url, w, rounds)) for w in range(2)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    with sqlite3.connect(tmp_path / "shared.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        sightings, tags = db.execute(
            "SELECT sightings, tags FROM indicators WHERE value = 'shared.example'"
        ).fetchone()
        assert sightings == 2 * rounds
        assert tags == '["w0","w1"]'
        assert db.execute("SELECT count(*) FROM indicators").fetchone() == (1 + 2 * rounds,)
        seqs = [row[0] for row in db.execute("SELECT seq FROM indicators")]
        assert len(set(seqs)) == len(seqs)
