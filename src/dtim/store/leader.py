"""Leader election among node processes that share one PostgreSQL database.

Several ``dtim node run`` processes may serve the APIs over one database;
exactly one of them must run gossip rounds, the aging sweeper and the node's
own watchers. The leader is the process holding a session-level PostgreSQL
advisory lock (``pg_try_advisory_lock``) on a connection of its own: the
lock lives exactly as long as that session, so a leader that dies (even by
``kill -9``) or loses its connection frees it, and another process takes it on
its next try. Every process checks every ``interval`` seconds: a follower
tries to take the lock, the leader checks that its session still holds it and
steps down (its leader-only work cancelled) the moment it cannot tell.

With SQLite there is one process per database, and it always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import psycopg

from dtim.store.engine import driver_url, redact_url

log = logging.getLogger("dtim.leader")

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]
Announce = Callable[[bool], Awaitable[None]]


class LeaderLock(Protocol):
    """A lock at most one process holds at a time."""

    async def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it (or on error)."""
        ...

    async def still_held(self) -> bool:
        """Whether this process still holds it (False when that cannot be confirmed)."""
        ...

    async def release(self) -> None:
        """Give it up (and close whatever holds it)."""
        ...


class SoleProcessLock:
    """The lock of a database only one process uses (SQLite): always held."""

    async def try_acquire(self) -> bool:
        """Always True."""
        return True

    async def still_held(self) -> bool:
        """Always True."""
        return True

    async def release(self) -> None:
        """Nothing to release."""


def lock_key(scope: str) -> int:
    """The advisory lock key (signed 64 bits) for ``scope`` (the node id: processes of one node
    share it; other nodes on the same server get other keys)."""
    digest = hashlib.sha256(b"dtim-leader|" + scope.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def libpq_url(url: str) -> str:
    """The store URL as libpq takes it (``postgresql://...``, query options kept)."""
    return "postgresql://" + driver_url(url).split("://", 1)[1]


class AdvisoryLock:
    """A session-level advisory lock on a dedicated PostgreSQL connection.

    Args:
        url: the store's PostgreSQL URL.
        key: from :func:`lock_key`.
        timeout: seconds for connecting and for every statement.
    """

    def __init__(self, url: str, key: int, *, timeout: float) -> None:
        self._url = libpq_url(url)
        self._key = key
        self._timeout = timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(1, round(self._timeout)),
                # A dead peer (either side) is noticed by the kernel within seconds.
                keepalives=1,
                keepalives_idle=max(1, round(self._timeout)),
                keepalives_interval=1,
                keepalives_count=3,
                application_name="dtim-leader",
            )
        return self._conn

    async def _query(self, sql: str) -> Any:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that
        # arrives as the query completes, and a leader told to stop would go on leading.
        async with asyncio.timeout(self._timeout):
            conn = await self._connection()
            cursor = await conn.execute(sql, (self._key,))
            row = await cursor.fetchone()
            return None if row is None else row[0]

    async def try_acquire(self) -> bool:
        """``pg_try_advisory_lock`` on the dedicated connection (opened when needed)."""
        try:
            return bool(await self._query("SELECT pg_try_advisory_lock(%s)"))
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.debug("leader lock not taken (%s): %s", redact_url(self._url), exc)
            await self._drop()
            return False

    async def still_held(self) -> bool:
        """Ask the server whether this session holds the lock; False on any failure."""
        try:
            held = await self._query(
                # A bigint key shows as classid (high 32 bits) and objid (low), objsubid 1.
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objsubid = 1 "
                "AND ((classid::bigint << 32) | objid::bigint) = %s::bigint"
            )
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("leader lock connection failed: %s", exc)
            await self._drop()
            return False
        if not held:
            await self._drop()
        return bool(held)

    async def release(self) -> None:
        """Unlock and close the connection (closing alone frees a session lock)."""
        if self._conn is not None and not self._conn.closed:
            with contextlib.suppress(psycopg.Error, OSError, TimeoutError):
                await self._query("SELECT pg_advisory_unlock(%s)")
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()


class Leadership:
    """Runs the leader-only work while this process holds the lock.

    Args:
        lock: the lock to hold.
        interval: seconds between tries (follower) and checks (leader).
        announce: called with True on taking the lead, False on losing it.
    """

    def __init__(
        self, lock: LeaderLock, *, interval: float, announce: Announce | None = None
    ) -> None:
        self.lock = lock
        self.interval = interval
        self.announce = announce
        self.is_leader = False
        self.changed = asyncio.Event()
        """Set on every change of leadership (tests and status pages wait on it)."""

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]], spawn: Spawn) -> None:
        """Forever: take the lock when free and run ``lead()``; cancel it when the lock is lost.

        Raises:
            the error of ``lead()`` when it fails (the node stops on it).
        """
        task: asyncio.Task[None] | None = None
        try:
            while True:
                if not self.is_leader:
                    if await self.lock.try_acquire():
                        task = spawn(lead(), "leader-work")
                        await self._set(True)
                elif not await self.lock.still_held():
                    log.warning("lost the leader lock; stopping gossip, aging and watchers here")
                    await _cancel(task)
                    task = None
                    await self._set(False)
                    continue  # try again at once: the lock may be free already
                if task is not None:
                    done, _ = await asyncio.wait({task}, timeout=self.interval)
                    if done:
                        finished, task = task, None
                        finished.result()  # raises the leader work's error
                else:
                    await asyncio.sleep(self.interval)
        finally:
            await _cancel(task)
            if self.is_leader:
                self.is_leader = False
                self.changed.set()
            await self.lock.release()

    async def _set(self, leading: bool) -> None:
        self.is_leader = leading
        self.changed.set()
        if leading:
            log.info("this process leads: it runs gossip rounds, aging and the watchers")
        if self.announce is not None:
            try:
                await self.announce(leading)
            except Exception as exc:  # an announcement is informative; leadership stands
                log.warning("could not record the leadership change: %s", exc)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait for it, passing on a cancellation of the caller meanwhile."""
    if task is None or task.done():
        return
    current = asyncio.current_task()
    before = current.cancelling() if current is not None else 0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if current is not None and current.cancelling() > before:
            raise
