"""Reads on the event loop: read-only, interrupted past their budget, and the same pages."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dtim.model import make_indicator
from dtim.store import IndicatorSearch, SortKey, Store
from dtim.store.loop_reads import LoopReader

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
# Counting to ten million takes SQLite about a second: far past any budget here.
ENDLESS = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000) "
    "SELECT count(*) FROM n"
)


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = str(tmp_path / "loop.db")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(k, f"v{k}") for k in range(100)])
    conn.close()
    return path


def test_a_short_read_returns_its_rows_at_once(database: str) -> None:
    reader = LoopReader(database)
    try:
        rows = reader.rows("SELECT k, v FROM t WHERE k < :below ORDER BY k", {"below": 3})
        assert rows == [(0, "v0"), (1, "v1"), (2, "v2")]
    finally:
        reader.close()


def test_the_connection_cannot_write(database: str) -> None:
    reader = LoopReader(database)
    try:
        assert reader.rows("DELETE FROM t", {}) is None
        assert reader.rows("SELECT count(*) FROM t", {}) == [(100,)]
    finally:
        reader.close()


def test_a_writer_in_the_middle_of_a_transaction_does_not_stop_a_read(database: str) -> None:
    reader = LoopReader(database)
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO t VALUES (100, 'new')")
        assert reader.rows("SELECT count(*) FROM t", {}) == [(100,)]  # the committed rows
        writer.execute("COMMIT")
        assert reader.rows("SELECT count(*) FROM t", {}) == [(101,)]
    finally:
        writer.close()
        reader.close()


@pytest.mark.timeout(3)  # sqlite3 alone would wait 5 s for the lock, SQLite's busy_timeout more
def test_a_locked_database_sends_the_read_away_at_once(tmp_path: Path) -> None:
    # Without WAL an exclusive writer locks readers out: the loop must not wait for it.
    path = str(tmp_path / "journal.db")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (k INTEGER)")
    reader = LoopReader(path)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("INSERT INTO t VALUES (1)")
        assert reader.rows("SELECT count(*) FROM t", {}) is None
        assert reader.moved == 1
        writer.execute("COMMIT")
        assert reader.rows("SELECT count(*) FROM t", {}) == [(1,)]
    finally:
        writer.close()
        reader.close()


def test_a_read_past_its_budget_is_interrupted_and_the_connection_still_works(
    database: str,
) -> None:
    reader = LoopReader(database, budget=0.001)
    try:
        assert reader.rows(ENDLESS, {}) is None
        assert reader.rows("SELECT v FROM t WHERE k = :k", {"k": 7}) == [("v7",)]
    finally:
        reader.close()


def test_a_statement_slow_in_the_thread_too_stays_off_the_loop_until_it_is_fast(
    database: str,
) -> None:
    reader = LoopReader(database, budget=0.001)
    sql = "SELECT count(*) FROM t"
    try:
        reader.took(sql, 0.5)
        assert reader.rows(sql, {}) is None
        assert reader.rows("SELECT count(*) FROM t WHERE k > 0", {}) == [(99,)]
        reader.took(sql, 0.0001)
        assert reader.rows(sql, {}) == [(100,)]
    finally:
        reader.close()


async def _fill(store: Store) -> None:
    items = [
        make_indicator(
            f"198.51.{n // 250}.{n % 250}",
            "ipv4",
            now=NOW - timedelta(minutes=n),
            confidence=n % 101,
            sources=["ufw" if n % 3 else "zeek"],
        )
        for n in range(600)
    ]
    await store.upsert_indicators(items)


@pytest.mark.parametrize(
    "search",
    [
        IndicatorSearch(limit=7),
        IndicatorSearch(source="zeek", sort=SortKey.CONFIDENCE, limit=9),
        IndicatorSearch(text="198.51.1.", sort=SortKey.VALUE, descending=False, limit=11),
        IndicatorSearch(text="198.51.0.0/23", min_confidence=50, limit=13),
    ],
)
async def test_pages_are_the_same_on_the_loop_in_the_thread_and_after_an_interruption(
    tmp_path: Path, search: IndicatorSearch
) -> None:
    url = f"sqlite:///{tmp_path / 'pages.db'}"
    async with Store(url) as seeded:
        await _fill(seeded)
    budgets = {"loop": 1.0, "thread": None, "interrupted": 1e-9}
    pages = {}
    for name, budget in budgets.items():
        async with Store(url, loop_read_budget=budget) as store:
            found, query = [], search
            while True:
                page = await store.search_indicator_summaries(query)
                whole = await store.search_indicators(query)
                assert [s.id for s in page.items] == [i.id for i in whole.items]
                found.append(page)
                if page.next_cursor is None:
                    break
                query = replace(query, cursor=page.next_cursor)
            reader = store._loop_reader
            if name == "thread":
                assert reader is None
            else:
                assert reader is not None
                # Interrupted, the scan ran past the budget on the loop and the thread
                # answered; with a second of budget, the loop answered every page.
                assert (reader.moved > 0) is (name == "interrupted")
            pages[name] = found
    assert pages["loop"] == pages["thread"] == pages["interrupted"]
    assert sum(len(p.items) for p in pages["loop"]) > 1
