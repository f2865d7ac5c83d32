"""The indicator store: every read and write DTIM makes, over SQLite or PostgreSQL.

Every write bumps a store-wide sequence number kept on the changed row, so
"everything changed since N" is one indexed range query. Writers are
serialised (SQLite ``BEGIN IMMEDIATE``; on PostgreSQL the row lock on the
sequence counter), so a read-merge-write never loses a concurrent update.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Select, and_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from dtim.errors import StoreError
from dtim.model import Indicator, Peer, PeerId, PeerStatus, Sighting, TailPosition, merge
from dtim.model.indicator import JsonValue
from dtim.store.engine import (
    POOL_SIZE,
    WRITE_FLAG,
    describe,
    make_engine,
    migrate,
    redact_url,
)
from dtim.store.loop_reads import LOOP_READ_BUDGET, LoopReader
from dtim.store.rows import (
    INDICATOR_COLUMNS,
    dumps,
    from_epoch,
    indicator_from_row,
    indicator_row,
    indicator_values,
    peer_from_row,
    peer_row,
)
from dtim.store.search import (
    IndicatorEvent,
    IndicatorPage,
    IndicatorSearch,
    IndicatorStats,
    IndicatorSummary,
    Item,
    PreparedSearch,
    add_event,
    events_for,
    fetch_page,
    indicator_of,
    indicator_stats,
    page_of,
    prepare_search,
    summary_of,
)
from dtim.store.tables import indicators, peers, sequence, sightings, state, tail_positions

T = TypeVar("T")

BATCH = 2000
"""Rows per statement: below SQLite's bound-variable limit, large enough to amortise round trips."""

# Built once: constructing and cache-keying a statement costs more than running it.
_BY_ID = select(indicators).where(indicators.c.id == bindparam("id"))
_BY_VALUE = select(indicators).where(
    and_(indicators.c.type == bindparam("type"), indicators.c.value == bindparam("value"))
)


@dataclass(frozen=True, slots=True)
class IndicatorQuery:
    """Filters for listing indicators, newest change first, with keyset pagination."""

    type: str | None = None
    tlp: str | None = None
    source: str | None = None
    min_confidence: int | None = None
    value_prefix: str | None = None
    before_seq: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class StoredSighting:
    """A sighting as stored: evidence still sealed."""

    id: int
    indicator_id: str
    source: str
    rule: str
    observed_at: datetime
    count: int
    sealed_evidence: bytes | None


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """Indicator counts for status pages."""

    total: int
    by_type: dict[str, int]
    by_tlp: dict[str, int]
    by_source: dict[str, int]


def upsert_statement(insert: Callable[[Any], Any], table: Any, keys: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` of every other column (SQLite, PostgreSQL)."""
    stmt = insert(table)
    columns = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=columns)


# Column names are constants, never input: the S608 findings below are about f-strings only.
_SQLITE_INDICATOR_UPSERT = (
    f"INSERT INTO indicators ({', '.join(INDICATOR_COLUMNS)})"  # noqa: S608  # nosec B608
    f" VALUES ({', '.join('?' * len(INDICATOR_COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in INDICATOR_COLUMNS if name != "id")
)
"""The indicator upsert with positional parameters (``indicator_values``), for sqlite3's own
executemany."""


def _loop_reader_for(engine: Engine, budget: float) -> LoopReader | None:
    """A :class:`LoopReader` on a SQLite file's database; None for PostgreSQL or in memory."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    try:
        return LoopReader(path, budget=budget)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path} for reading: {exc}") from exc


def _sqlite_select_by_ids(count: int) -> str:
    """``SELECT`` of the stored rows among ``count`` ids, columns as ``INDICATOR_COLUMNS``.

    As text, because compiling an expanding ``IN`` of thousands of bound ids in SQLAlchemy
    costs more than SQLite's lookups; sqlite3 caches the prepared statement per length.
    """
    return (
        f"SELECT {', '.join(INDICATOR_COLUMNS)} FROM indicators"  # noqa: S608  # nosec B608
        f" WHERE id IN ({', '.join('?' * count)})"
    )


class Store:
    """Async access to the DTIM database. Construct, then ``await connect()``.

    Each operation runs as one unit in a small worker pool over a synchronous
    engine: SQLite and psycopg calls are fast, and a single thread hop per
    operation costs far less than one hop per driver call. Dashboard searches
    on SQLite are first tried on the event loop, within a time budget
    (:mod:`dtim.store.loop_reads`): for them the hop cost more than the read.
    """

    def __init__(self, url: str, *, loop_read_budget: float | None = LOOP_READ_BUDGET) -> None:
        """A store of the database at ``url`` (``connect`` opens it).

        Args:
            url: ``sqlite:///path`` or ``postgresql://...``.
            loop_read_budget: seconds a SQLite search may run on the event loop before
                it moves to a worker thread (:mod:`dtim.store.loop_reads`); None runs
                every read in a worker thread.
        """
        self.url = url
        self._loop_read_budget = loop_read_budget
        self._engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loop_reader: LoopReader | None = None
        self.write_failure: str | None = None
        """Why the last write failed (a full disk, a read-only file), None once one succeeds:
        the node's readiness check reports it."""

    async def connect(self) -> None:
        """Open the database and apply pending migrations.

        Raises:
            StoreError: the database cannot be opened or migrated.
        """
        try:
            engine = make_engine(self.url)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open {redact_url(self.url)}: {exc}") from exc
        self._executor = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="dtim-store")
        self._engine = engine
        try:
            await self._run(lambda: migrate(engine))
            if self._loop_read_budget is not None:
                self._loop_reader = _loop_reader_for(engine, self._loop_read_budget)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Release every connection and the worker threads."""
        if self._loop_reader is not None:
            reader, self._loop_reader = self._loop_reader, None
            reader.close()
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await asyncio.get_running_loop().run_in_executor(self._executor, engine.dispose)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def __aenter__(self) -> Store:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def engine(self) -> Engine:
        """The engine (after connect)."""
        if self._engine is None:
            raise StoreError("store is not connected (call await store.connect())")
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def _run(self, work: Callable[[], T]) -> T:
        if self._executor is None or self._engine is None:
            raise StoreError("store is not connected (call await store.connect())")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database read failed: {describe(exc)}") from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE_FLAG: True})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            self.write_failure = describe(exc)
            raise StoreError(
                f"database write failed, nothing was changed: {describe(exc)}"
            ) from exc
        self.write_failure = None

    def _next_seq(self, conn: Connection, count: int) -> int:
        """Reserve ``count`` change numbers; returns the first."""
        result = conn.execute(
            update(sequence)
            .where(sequence.c.name == "changes")
            .values(value=sequence.c.value + count)
            .returning(sequence.c.value)
        )
        return int(result.scalar_one()) - count + 1

    def _upsert(self, table: Any, keys: Sequence[str]) -> Any:
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        return upsert_statement(dialect_insert, table, keys)

    # -- indicators -------------------------------------------------------

    async def upsert_indicators(self, items: Sequence[Indicator]) -> int:
        """Merge indicators into the store (sightings add up, tags union ...).

        Returns:
            How many distinct indicators were written.
        """
        if not items:
            return 0

        def work() -> int:
            with self._write() as conn:
                return self._merge_into(conn, items)

        return await self._run(work)

    def _merge_into(self, conn: Connection, items: Sequence[Indicator]) -> int:
        pending: dict[str, Indicator] = {}
        for item in items:
            seen = pending.get(item.id)
            pending[item.id] = item if seen is None else merge(seen, item)
        ids = list(pending)
        first = self._next_seq(conn, len(ids))
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            for stored in self._stored_among(conn, chunk):
                pending[stored.id] = merge(stored, pending[stored.id])
            if self.dialect == "sqlite":
                # sqlite3's executemany on positional text: SQLAlchemy's per-row parameter
                # processing would cost as much as SQLite's own work here.
                conn.exec_driver_sql(
                    _SQLITE_INDICATOR_UPSERT,
                    [
                        indicator_values(pending[key], first + start + offset)
                        for offset, key in enumerate(chunk)
                    ],
                )
            else:
                # PostgreSQL keeps the compiled statement: SQLAlchemy batches it into
                # multi-row INSERTs.
                conn.execute(
                    self._upsert(indicators, ["id"]),
                    [
                        indicator_row(pending[key], first + start + offset)
                        for offset, key in enumerate(chunk)
                    ],
                )
        return len(ids)

    def _stored_among(self, conn: Connection, ids: Sequence[str]) -> list[Indicator]:
        """The stored indicators among ``ids`` (at most ``BATCH``)."""
        if self.dialect == "sqlite":
            rows = conn.exec_driver_sql(_sqlite_select_by_ids(len(ids)), tuple(ids))
            return [
                indicator_from_row(dict(zip(INDICATOR_COLUMNS, row, strict=True))) for row in rows
            ]
        return [
            indicator_from_row(row)
            for row in conn.execute(select(indicators).where(indicators.c.id.in_(ids))).mappings()
        ]

    async def replace_indicator(self, indicator: Indicator) -> None:
        """Store ``indicator`` exactly as given (analyst edits: TLP, scope, recipients)."""

        def work() -> None:
            with self._write() as conn:
                seq = self._next_seq(conn, 1)
                conn.execute(self._upsert(indicators, ["id"]), [indicator_row(indicator, seq)])

        await self._run(work)

    async def delete_indicator(self, indicator_id: str) -> bool:
        """Delete an indicator and its sightings; False when it did not exist."""

        def work() -> bool:
            with self._write() as conn:
                conn.execute(delete(sightings).where(sightings.c.indicator_id == indicator_id))
                return bool(
                    conn.execute(delete(indicators).where(indicators.c.id == indicator_id)).rowcount
                )

        return await self._run(work)

    async def get_indicator(self, indicator_id: str) -> Indicator | None:
        """One indicator by id."""
        return await self._run(lambda: self._one_indicator(_BY_ID, {"id": indicator_id}))

    async def find_indicator(self, type_: str, value: str) -> Indicator | None:
        """One indicator by normalised type and value."""
        return await self._run(
            lambda: self._one_indicator(_BY_VALUE, {"type": type_, "value": value})
        )

    def _one_indicator(self, stmt: Any, params: dict[str, str]) -> Indicator | None:
        with self._read() as conn:
            row = conn.execute(stmt, params).mappings().first()
        return indicator_from_row(row) if row else None

    async def list_indicators(self, query: IndicatorQuery | None = None) -> list[Indicator]:
        """Indicators matching ``query``, most recently changed first."""
        q = query or IndicatorQuery()
        stmt: Select[Any] = select(indicators)
        if q.type:
            stmt = stmt.where(indicators.c.type == q.type)
        if q.tlp:
            stmt = stmt.where(indicators.c.tlp == q.tlp)
        if q.min_confidence is not None:
            stmt = stmt.where(indicators.c.confidence >= q.min_confidence)
        if q.source:
            stmt = stmt.where(indicators.c.sources.contains(f'"{q.source}"'))
        if q.value_prefix:
            escaped = q.value_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(indicators.c.value.like(f"{escaped}%", escape="\\"))
        if q.before_seq is not None:
            stmt = stmt.where(indicators.c.seq < q.before_seq)
        stmt = stmt.order_by(indicators.c.seq.desc()).limit(max(1, min(q.limit, 10_000)))
        return await self._run(lambda: self._indicators(stmt))

    def _indicators(self, stmt: Any) -> list[Indicator]:
        with self._read() as conn:
            return [indicator_from_row(row) for row in conn.execute(stmt).mappings()]

    async def changed_since(self, seq: int, limit: int = 1000) -> list[tuple[int, Indicator]]:
        """Indicators whose change number is above ``seq``, in change order."""
        stmt = (
            select(indicators).where(indicators.c.seq > seq).order_by(indicators.c.seq).limit(limit)
        )

        def work() -> list[tuple[int, Indicator]]:
            with self._read() as conn:
                return [
                    (row["seq"], indicator_from_row(row)) for row in conn.execute(stmt).mappings()
                ]

        return await self._run(work)

    async def last_seq(self) -> int:
        """The newest change number handed out."""

        def work() -> int:
            with self._read() as conn:
                return int(
                    conn.execute(
                        select(sequence.c.value).where(sequence.c.name == "changes")
                    ).scalar_one()
                )

        return await self._run(work)

    async def size_bytes(self) -> int:
        """Bytes the store takes in its database: SQLite's pages, or PostgreSQL's tables with
        their indexes in the store's schema."""

        def work() -> int:
            with self._read() as conn:
                if self.dialect == "sqlite":
                    pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
                    page_size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
                    return int(pages) * int(page_size)
                return int(
                    conn.exec_driver_sql(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
                    ).scalar_one()
                )

        return await self._run(work)

    async def counts(self) -> StoreCounts:
        """Indicator totals by type, TLP and source."""

        def work() -> StoreCounts:
            with self._read() as conn:
                by_type = {
                    r[0]: r[1]
                    for r in conn.execute(
                        select(indicators.c.type, func.count()).group_by(indicators.c.type)
                    )
                }
                by_tlp = {
                    r[0]: r[1]
                    for r in conn.execute(
                        select(indicators.c.tlp, func.count()).group_by(indicators.c.tlp)
                    )
                }
                by_sources = conn.execute(
                    select(indicators.c.sources, func.count()).group_by(indicators.c.sources)
                )
                by_source: dict[str, int] = {}
                for raw, count in by_sources:
                    for source in orjson.loads(raw) or ["unknown"]:
                        by_source[source] = by_source.get(source, 0) + count
            return StoreCounts(
                total=sum(by_type.values()), by_type=by_type, by_tlp=by_tlp, by_source=by_source
            )

        return await self._run(work)

    # -- dashboard (queries in search.py) -------------------------------------

    async def search_indicators(self, search: IndicatorSearch) -> IndicatorPage[Indicator]:
        """One keyset-paginated page of a dashboard search (see :class:`IndicatorSearch`).

        Raises:
            ValidationError: a malformed cursor or limit.
        """
        return await self._page(prepare_search(search, self.dialect), indicator_of)

    async def search_indicator_summaries(
        self, search: IndicatorSearch
    ) -> IndicatorPage[IndicatorSummary]:
        """:meth:`search_indicators`, each indicator as the dashboard's table shows it.

        Raises:
            ValidationError: a malformed cursor or limit.
        """
        return await self._page(prepare_search(search, self.dialect, summary=True), summary_of)

    async def _page(
        self, prepared: PreparedSearch, build: Callable[[Sequence[Any]], Item]
    ) -> IndicatorPage[Item]:
        reader = self._loop_reader
        if reader is None:
            return await self._run(lambda: self._fetch_page(prepared, build))
        sql, params = prepared.sqlite_text()
        rows = reader.rows(sql, params)
        if rows is not None:
            return page_of(rows, prepared, build)

        def timed() -> tuple[IndicatorPage[Item], float]:
            started = time.perf_counter()
            page = self._fetch_page(prepared, build)
            return page, time.perf_counter() - started

        page, seconds = await self._run(timed)
        reader.took(sql, seconds)
        return page

    def _fetch_page(
        self, prepared: PreparedSearch, build: Callable[[Sequence[Any]], Item]
    ) -> IndicatorPage[Item]:
        with self._read() as conn:
            return fetch_page(conn, prepared, build)

    async def indicator_stats(
        self, *, since: datetime, local_sources: Sequence[str]
    ) -> IndicatorStats:
        """Overview charts: new indicators per hour and source, confidence deciles, origins."""

        def work() -> IndicatorStats:
            with self._read() as conn:
                return indicator_stats(conn, since=since, local_sources=local_sources)

        return await self._run(work)

    async def add_indicator_event(self, event: IndicatorEvent) -> None:
        """Append an entry to an indicator's history."""

        def work() -> None:
            with self._write() as conn:
                add_event(conn, event)

        await self._run(work)

    async def indicator_events(self, indicator_id: str, limit: int = 100) -> list[IndicatorEvent]:
        """An indicator's history entries, newest first."""

        def work() -> list[IndicatorEvent]:
            with self._read() as conn:
                return events_for(conn, indicator_id, limit)

        return await self._run(work)

    # -- sightings and tail positions ---------------------------------------

    async def record_sightings(
        self,
        found: Sequence[Sighting],
        sealed_evidence: Sequence[bytes | None] = (),
        positions: Sequence[TailPosition] = (),
    ) -> None:
        """Store sightings, their indicators and the tail positions in one transaction.

        After a crash either all of it is stored or none, so a restarted watcher
        neither loses nor double-counts lines.

        Args:
            found: the detections.
            sealed_evidence: encrypted evidence per sighting (same order), or empty.
            positions: where each followed file was read up to.
        """
        if sealed_evidence and len(sealed_evidence) != len(found):
            raise StoreError("sealed_evidence must match the sightings one to one")

        def work() -> None:
            with self._write() as conn:
                self.record_into(conn, found, sealed_evidence, positions)

        await self._run(work)

    def record_into(
        self,
        conn: Connection,
        found: Sequence[Sighting],
        sealed_evidence: Sequence[bytes | None] = (),
        positions: Sequence[TailPosition] = (),
    ) -> None:
        """The body of :meth:`record_sightings` inside a write transaction the caller holds
        (the sensor batches of :mod:`dtim.store.sensors` commit with it)."""
        if found:
            self._merge_into(conn, [s.indicator for s in found])
            conn.execute(
                sightings.insert(),
                [
                    {
                        "indicator_id": s.indicator.id,
                        "source": s.source,
                        "rule": s.rule,
                        "observed_at": s.observed_at.timestamp(),
                        "count": s.count,
                        "evidence": sealed_evidence[i] if sealed_evidence else None,
                    }
                    for i, s in enumerate(found)
                ],
            )
        if positions:
            conn.execute(
                self._upsert(tail_positions, ["watcher", "path"]),
                [
                    {
                        "watcher": p.watcher,
                        "path": p.path,
                        "inode": p.inode,
                        "offset": p.offset,
                        "fingerprint": p.fingerprint,
                    }
                    for p in positions
                ],
            )

    async def sightings_for(self, indicator_id: str, limit: int = 100) -> list[StoredSighting]:
        """The newest local sightings of an indicator."""
        stmt = (
            select(sightings)
            .where(sightings.c.indicator_id == indicator_id)
            .order_by(sightings.c.observed_at.desc(), sightings.c.id)
            .limit(limit)
        )

        return await self._run(lambda: self._sightings(stmt))

    async def sightings_after(self, after: int, limit: int = 1000) -> list[StoredSighting]:
        """Sightings whose row id is above ``after``, oldest first, with or without sealed
        evidence (the node's privacy filter learns local names from it; every row is
        listed so that a missing id is a sighting not committed yet, or deleted)."""
        stmt = select(sightings).where(sightings.c.id > after).order_by(sightings.c.id).limit(limit)

        return await self._run(lambda: self._sightings(stmt))

    async def sightings_by_id(self, ids: Collection[int]) -> list[StoredSighting]:
        """The sightings among row ``ids`` (at most 1,000) that exist now, oldest first."""
        stmt = select(sightings).where(sightings.c.id.in_(list(ids))).order_by(sightings.c.id)

        return await self._run(lambda: self._sightings(stmt))

    def _sightings(self, stmt: Any) -> list[StoredSighting]:
        with self._read() as conn:
            return [
                StoredSighting(
                    id=r["id"],
                    indicator_id=r["indicator_id"],
                    source=r["source"],
                    rule=r["rule"],
                    observed_at=from_epoch(r["observed_at"]),
                    count=r["count"],
                    sealed_evidence=r["evidence"],
                )
                for r in conn.execute(stmt).mappings()
            ]

    async def get_position(self, watcher: str, path: str) -> TailPosition | None:
        """Where ``watcher`` stopped reading ``path``."""
        stmt = select(tail_positions).where(
            and_(tail_positions.c.watcher == watcher, tail_positions.c.path == path)
        )

        def work() -> TailPosition | None:
            with self._read() as conn:
                row = conn.execute(stmt).mappings().first()
            if row is None:
                return None
            return TailPosition(
                row["watcher"], row["path"], row["inode"], row["offset"], row["fingerprint"]
            )

        return await self._run(work)

    # -- peers ----------------------------------------------------------------

    async def save_peer(self, peer: Peer) -> None:
        """Insert or update a peer by id."""

        def work() -> None:
            with self._write() as conn:
                conn.execute(self._upsert(peers, ["id"]), [peer_row(peer)])

        await self._run(work)

    async def get_peer(self, peer_id: str) -> Peer | None:
        """A peer by id (its node id)."""

        def work() -> Peer | None:
            with self._read() as conn:
                row = conn.execute(select(peers).where(peers.c.id == peer_id)).mappings().first()
            return peer_from_row(row) if row else None

        return await self._run(work)

    async def list_peers(self, status: PeerStatus | None = None) -> list[Peer]:
        """Peers, optionally only those with ``status``."""
        stmt = select(peers).order_by(peers.c.added_at)
        if status is not None:
            stmt = stmt.where(peers.c.status == status.value)

        def work() -> list[Peer]:
            with self._read() as conn:
                return [peer_from_row(row) for row in conn.execute(stmt).mappings()]

        return await self._run(work)

    async def set_peer_status(self, peer_id: PeerId | str, status: PeerStatus) -> Peer:
        """Approve, reject or revoke a peer.

        Raises:
            StoreError: no such peer.
        """

        def work() -> Peer:
            with self._write() as conn:
                conn.execute(update(peers).where(peers.c.id == peer_id).values(status=status.value))
                row = conn.execute(select(peers).where(peers.c.id == peer_id)).mappings().first()
            if row is None:
                raise StoreError(f"no peer with id {peer_id!r}")
            return peer_from_row(row)

        return await self._run(work)

    # -- key/value state ----------------------------------------------------------

    async def get_state(self, key: str) -> JsonValue:
        """A JSON value stored under ``key``, or None."""

        def work() -> JsonValue:
            with self._read() as conn:
                raw = conn.execute(
                    select(state.c.value).where(state.c.key == key)
                ).scalar_one_or_none()
            return None if raw is None else orjson.loads(raw)

        return await self._run(work)

    async def set_state(self, key: str, value: JsonValue) -> None:
        """Store a JSON value under ``key``."""

        def work() -> None:
            with self._write() as conn:
                conn.execute(self._upsert(state, ["key"]), [{"key": key, "value": dumps(value)}])

        await self._run(work)
