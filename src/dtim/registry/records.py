"""The registry's records: the newest signed statement per node, over SQLite or PostgreSQL.

Writes are serialised (SQLite ``BEGIN IMMEDIATE``; on PostgreSQL a row lock on
the sequence counter, taken first), so change numbers are handed out in commit
order and a reader paging with ``since=<last seq>`` never skips a row that
commits late — with any number of registry processes on one database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from dtim.errors import StoreError
from dtim.registry.statements import SignedStatement, StatementKind
from dtim.registry.tables import cursors, entries, meta, sequence
from dtim.store.engine import POOL_SIZE, WRITE_FLAG, make_engine, redact_url
from dtim.store.engine import migrate as store_migrate

T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 746520
"""PostgreSQL advisory lock id for concurrent registry starts (the node store uses another)."""

_ENTRY = StatementKind.ENTRY.value
_PAGE_COLUMNS = (entries.c.seq, entries.c.document)
_PEERS_PAGE = (
    select(*_PAGE_COLUMNS)
    .where(
        and_(
            entries.c.kind == _ENTRY,
            entries.c.seq > bindparam("since"),
            entries.c.expires_at > bindparam("now"),
        )
    )
    .order_by(entries.c.seq)
    .limit(bindparam("limit"))
)
_ENTRIES_PAGE = (
    select(*_PAGE_COLUMNS)
    .where(and_(entries.c.seq > bindparam("since"), entries.c.expires_at > bindparam("now")))
    .order_by(entries.c.seq)
    .limit(bindparam("limit"))
)
_BY_NODE = select(entries.c.kind, entries.c.issued_at, entries.c.signature).where(
    entries.c.node_id == bindparam("node_id")
)
_ENDPOINT_HOLDER = (
    select(entries.c.node_id)
    .where(
        and_(
            entries.c.endpoint == bindparam("endpoint"),
            entries.c.kind == _ENTRY,
            entries.c.expires_at > bindparam("now"),
            entries.c.node_id != bindparam("node_id"),
        )
    )
    .limit(1)
)


class Outcome(StrEnum):
    """What applying one signed statement did."""

    STORED = "stored"
    UNCHANGED = "unchanged"
    """This very statement is already the current one."""
    STALE = "stale"
    """A newer statement from the same key is current."""
    ENDPOINT_TAKEN = "endpoint_taken"
    """Another key holds a live entry for this endpoint."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of served list items (JSON text, as stored) and where to continue."""

    documents: tuple[str, ...]
    next_since: int
    """Pass as ``since`` to get what follows (the input ``since`` when the page is empty)."""
    full: bool
    """True when the page holds ``limit`` items, so more may follow."""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """The current statement of one node, as recorded."""

    node_id: str
    kind: StatementKind
    endpoint: str
    issued_at: int
    expires_at: int
    document: str
    origin: str
    seq: int


class RegistryRecords:
    """Async access to the registry database. Construct, then ``await connect()``.

    Like :class:`dtim.store.Store`, each operation runs as one unit in a small
    worker pool over a synchronous engine, so it works from any event loop.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def connect(self) -> None:
        """Open the database and apply pending registry migrations.

        Raises:
            StoreError: the database cannot be opened or migrated.
        """
        try:
            engine = make_engine(self.url)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open {redact_url(self.url)}: {exc}") from exc
        self._executor = ThreadPoolExecutor(
            max_workers=POOL_SIZE, thread_name_prefix="dtim-registry"
        )
        self._engine = engine
        try:
            await self._run(lambda: migrate(engine))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Release every connection and the worker threads."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await asyncio.get_running_loop().run_in_executor(self._executor, engine.dispose)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def __aenter__(self) -> RegistryRecords:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def engine(self) -> Engine:
        """The engine (after connect)."""
        if self._engine is None:
            raise StoreError("registry database is not connected (call await records.connect())")
        return self._engine

    async def _run(self, work: Callable[[], T]) -> T:
        if self._executor is None or self._engine is None:
            raise StoreError("registry database is not connected (call await records.connect())")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"registry database read failed: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE_FLAG: True})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"registry database write failed, nothing was changed: {exc}") from exc

    def _upsert(self, table: Any, keys: Sequence[str]) -> Any:
        dialect = self.engine.dialect.name
        stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        columns = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=columns)

    # -- writes -----------------------------------------------------------------

    async def apply(
        self, signed: SignedStatement, *, origin: str, now: int, strict: bool = True
    ) -> Outcome:
        """Record ``signed`` if it is newer than the node's current statement.

        Args:
            signed: a statement whose signature was checked.
            origin: ``""`` for a direct registration, else the registry it came from.
            now: current Unix time (decides which entries are live).
            strict: direct registrations must be strictly newer than the current statement
                (or identical to it); federation breaks ties deterministically instead.

        Returns:
            What happened.
        """
        return (await self.apply_many([signed], origin=origin, now=now, strict=strict))[0]

    async def apply_many(
        self, items: Sequence[SignedStatement], *, origin: str, now: int, strict: bool = False
    ) -> list[Outcome]:
        """Apply several statements in one transaction, in order; one outcome each."""
        if not items:
            return []

        def work() -> list[Outcome]:
            with self._write() as conn:
                # Locking the counter first serialises writers on PostgreSQL too.
                current = conn.execute(
                    select(sequence.c.value).where(sequence.c.name == "entries").with_for_update()
                ).scalar_one()
                outcomes: list[Outcome] = []
                seq = int(current)
                for signed in items:
                    outcome = self._check(conn, signed, now=now, strict=strict)
                    if outcome is Outcome.STORED:
                        seq += 1
                        conn.execute(
                            self._upsert(entries, ["node_id"]), [_row(signed, origin, now, seq)]
                        )
                    outcomes.append(outcome)
                if seq != current:
                    conn.execute(
                        update(sequence).where(sequence.c.name == "entries").values(value=seq)
                    )
                return outcomes

        return await self._run(work)

    def _check(
        self, conn: Connection, signed: SignedStatement, *, now: int, strict: bool
    ) -> Outcome:
        statement = signed.statement
        row = conn.execute(_BY_NODE, {"node_id": signed.node_id}).first()
        if row is not None:
            current = (int(row.issued_at), StatementKind(row.kind).rank, str(row.signature))
            if current == signed.order_key():
                return Outcome.UNCHANGED
            if current > signed.order_key() or (strict and current[0] >= statement.issued_at):
                return Outcome.STALE
        if statement.kind is StatementKind.ENTRY:
            holder = conn.execute(
                _ENDPOINT_HOLDER,
                {"endpoint": statement.endpoint, "now": now, "node_id": signed.node_id},
            ).first()
            if holder is not None:
                return Outcome.ENDPOINT_TAKEN
        return Outcome.STORED

    async def prune(self, now: int) -> int:
        """Delete entries and withdrawals whose statements have expired; returns how many."""

        def work() -> int:
            with self._write() as conn:
                return int(
                    conn.execute(delete(entries).where(entries.c.expires_at <= now)).rowcount
                )

        return await self._run(work)

    async def save_cursor(self, url: str, instance: str, since: int, now: int) -> None:
        """Remember how far the federation pull from ``url`` got."""

        def work() -> None:
            with self._write() as conn:
                row = {"url": url, "instance": instance, "since": since, "updated_at": now}
                conn.execute(self._upsert(cursors, ["url"]), [row])

        await self._run(work)

    # -- reads ------------------------------------------------------------------

    async def peers(self, *, since: int, limit: int, now: int) -> Page:
        """Live entries changed after ``since``, oldest change first (one index range scan)."""
        return await self._page(_PEERS_PAGE, since=since, limit=limit, now=now)

    async def entries(self, *, since: int, limit: int, now: int) -> Page:
        """Live entries and withdrawals changed after ``since`` (for federation)."""
        return await self._page(_ENTRIES_PAGE, since=since, limit=limit, now=now)

    async def _page(self, stmt: Any, *, since: int, limit: int, now: int) -> Page:
        def work() -> Page:
            with self._read() as conn:
                rows = conn.execute(stmt, {"since": since, "limit": limit, "now": now}).all()
            return Page(
                documents=tuple(row[1] for row in rows),
                next_since=int(rows[-1][0]) if rows else since,
                full=len(rows) >= limit,
            )

        return await self._run(work)

    async def get(self, node_id: str) -> StoredEntry | None:
        """The current statement of a node, whatever its kind or age."""

        def work() -> StoredEntry | None:
            with self._read() as conn:
                row = (
                    conn.execute(select(entries).where(entries.c.node_id == node_id))
                    .mappings()
                    .first()
                )
            if row is None:
                return None
            return StoredEntry(
                node_id=row["node_id"],
                kind=StatementKind(row["kind"]),
                endpoint=row["endpoint"],
                issued_at=int(row["issued_at"]),
                expires_at=int(row["expires_at"]),
                document=row["document"],
                origin=row["origin"],
                seq=int(row["seq"]),
            )

        return await self._run(work)

    async def count_live(self, now: int) -> int:
        """How many nodes are listed right now."""

        def work() -> int:
            with self._read() as conn:
                stmt = select(func.count()).where(
                    and_(entries.c.kind == _ENTRY, entries.c.expires_at > now)
                )
                return int(conn.execute(stmt).scalar_one())

        return await self._run(work)

    async def instance(self) -> str:
        """This database's random id (changes only when the database is recreated)."""

        def work() -> str:
            with self._read() as conn:
                return str(
                    conn.execute(select(meta.c.value).where(meta.c.key == "instance")).scalar_one()
                )

        return await self._run(work)

    async def cursor(self, url: str) -> tuple[str, int] | None:
        """(remote instance id, since) saved for a federation peer, if any."""

        def work() -> tuple[str, int] | None:
            with self._read() as conn:
                row = conn.execute(
                    select(cursors.c.instance, cursors.c.since).where(cursors.c.url == url)
                ).first()
            return (str(row[0]), int(row[1])) if row else None

        return await self._run(work)


def _row(signed: SignedStatement, origin: str, now: int, seq: int) -> dict[str, Any]:
    statement = signed.statement
    return {
        "node_id": signed.node_id,
        "kind": statement.kind.value,
        "public_key": statement.public_key,
        "endpoint": statement.endpoint,
        "issued_at": statement.issued_at,
        "expires_at": statement.expires_at,
        "signature": signed.signature,
        "document": signed.document(),
        "origin": origin,
        "received_at": now,
        "seq": seq,
    }


def migrate(engine: Engine) -> None:
    """Apply every pending registry migration (its own scripts, version table and lock).

    Raises:
        StoreError: the database refused the migration.
    """
    store_migrate(
        engine, script_location=MIGRATIONS, lock_id=_MIGRATION_LOCK, what="registry database"
    )
