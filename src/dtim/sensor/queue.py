"""The sensor's on-disk buffer: batches of sightings waiting for the node, and tail positions.

A small SQLite file in the sensor home (mode 0600). A watcher's commit puts its
sightings (as batches with fresh ids) and its tail positions into the file in
one transaction, so a position moves forward only once what was read before it
is safe on disk: a sensor killed at any moment neither loses nor repeats lines.
The forwarder sends the oldest batches first and deletes them only after the
node confirmed them; the node recognises a batch it already has by its id.

All database work runs on one worker thread (the event loop never blocks on disk).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import orjson

from dtim.errors import StoreError
from dtim.model import JsonValue, Sighting, TailPosition
from dtim.sensor.wire import sighting_json

T = TypeVar("T")

QUEUE_FILE = "data/sensor-queue.db"
"""The buffer's path inside the sensor home."""
SIGHTINGS_PER_BATCH = 500
"""A watcher commit with more sightings is split into several batches (same transaction)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    sightings INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS parked (
    seq INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    created REAL NOT NULL,
    sightings INTEGER NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    watcher TEXT NOT NULL,
    path TEXT NOT NULL,
    inode INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (watcher, path)
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class QueuedBatch:
    """A batch waiting in the buffer: its place, id, size, the sightings as JSON bytes, and
    when it was buffered (Unix seconds)."""

    seq: int
    batch_id: str
    sightings: int
    body: bytes
    created: float


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits: batches and sightings, and batches the node refused (parked)."""

    batches: int
    sightings: int
    parked: int


class SensorQueue:
    """The buffer; a :class:`~dtim.watchers.base.SightingSink` and a state writer for watchers.

    Construct, then ``await open()``; ``await close()`` at the end.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.added = asyncio.Event()
        """Set whenever a batch is buffered (the forwarder waits on it)."""
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        """Create or open the file (mode 0600).

        Raises:
            StoreError: the file cannot be created or read.
        """
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dtim-sensor-queue")
        self._db = await self._run(self._connect)

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(self.path, 0o600)  # also when it existed with looser bits
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the sensor buffer {self.path}: {exc}") from exc
        return db

    async def close(self) -> None:
        """Close the file and the worker thread."""
        if self._db is not None:
            db, self._db = self._db, None
            await self._run(db.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _run(self, work: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreError("the sensor buffer is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the sensor buffer is not open")
        return self._db

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"sensor buffer write failed, nothing was changed: {exc}") from exc
        return result

    # -- the watchers' side ------------------------------------------------------------

    async def commit(
        self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]
    ) -> None:
        """Buffer ``sightings`` as new batches and move ``positions`` forward, atomically."""
        rows = [
            (
                uuid.uuid4().hex,
                len(chunk),
                orjson.dumps([sighting_json(s) for s in chunk]),
            )
            for chunk in (
                sightings[i : i + SIGHTINGS_PER_BATCH]
                for i in range(0, len(sightings), SIGHTINGS_PER_BATCH)
            )
        ]

        def work(db: sqlite3.Connection) -> None:
            now = time.time()
            db.executemany(
                "INSERT INTO batches (batch_id, created, sightings, body) VALUES (?, ?, ?, ?)",
                [(batch_id, now, count, body) for batch_id, count, body in rows],
            )
            db.executemany(
                'INSERT INTO positions (watcher, path, inode, "offset", fingerprint) '
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (watcher, path) DO UPDATE SET "
                'inode = excluded.inode, "offset" = excluded."offset", '
                "fingerprint = excluded.fingerprint",
                [(p.watcher, p.path, p.inode, p.offset, p.fingerprint) for p in positions],
            )

        await self._run(lambda: self._transaction(work))
        if rows:
            self.added.set()

    async def position(self, watcher: str, path: str) -> TailPosition | None:
        """The buffered position of ``watcher`` on ``path``."""

        def work() -> TailPosition | None:
            row = (
                self._conn()
                .execute(
                    'SELECT inode, "offset", fingerprint FROM positions '
                    "WHERE watcher = ? AND path = ?",
                    (watcher, path),
                )
                .fetchone()
            )
            return None if row is None else TailPosition(watcher, path, row[0], row[1], row[2])

        return await self._run(work)

    async def set_state(self, key: str, value: JsonValue) -> None:
        """Keep a JSON value (the watchers' counters) in the buffer file."""
        raw = orjson.dumps(value).decode()
        await self._run(
            lambda: self._transaction(
                lambda db: db.execute(
                    "INSERT INTO state (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, raw),
                )
            )
        )

    async def get_state(self, key: str) -> JsonValue:
        """A JSON value kept with :meth:`set_state`, or None."""

        def work() -> JsonValue:
            row = self._conn().execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
            return None if row is None else orjson.loads(row[0])

        return await self._run(work)

    # -- the forwarder's side ------------------------------------------------------------

    async def oldest(self, max_batches: int, max_bytes: int) -> list[QueuedBatch]:
        """The oldest batches, at least one (when any), within both limits."""

        def work() -> list[QueuedBatch]:
            rows = self._conn().execute(
                "SELECT seq, batch_id, sightings, body, created FROM batches ORDER BY seq LIMIT ?",
                (max_batches,),
            )
            chosen: list[QueuedBatch] = []
            size = 0
            for seq, batch_id, count, body, created in rows:
                size += len(body) + len(batch_id) + 64
                if chosen and size > max_bytes:
                    break
                chosen.append(QueuedBatch(seq, batch_id, count, bytes(body), created))
            return chosen

        return await self._run(work)

    async def remove(self, batches: Sequence[QueuedBatch]) -> None:
        """Forget batches the node confirmed."""
        seqs = [(b.seq,) for b in batches]
        await self._run(
            lambda: self._transaction(
                lambda db: db.executemany("DELETE FROM batches WHERE seq = ?", seqs)
            )
        )

    async def park(self, batch: QueuedBatch, reason: str) -> None:
        """Move a batch the node refuses for good out of the way (kept, never dropped)."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO parked (seq, batch_id, created, sightings, body, reason) "
                "SELECT seq, batch_id, created, sightings, body, ? FROM batches WHERE seq = ?",
                (reason, batch.seq),
            )
            db.execute("DELETE FROM batches WHERE seq = ?", (batch.seq,))

        await self._run(lambda: self._transaction(work))

    async def backlog(self) -> Backlog:
        """How much waits for the node."""

        def work() -> Backlog:
            db = self._conn()
            batches, sightings = db.execute(
                "SELECT count(*), coalesce(sum(sightings), 0) FROM batches"
            ).fetchone()
            (parked,) = db.execute("SELECT count(*) FROM parked").fetchone()
            return Backlog(int(batches), int(sightings), int(parked))

        return await self._run(work)
