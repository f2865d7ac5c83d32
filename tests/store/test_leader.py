from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import psycopg
import pytest

from dtim.store.leader import AdvisoryLock, Leadership, SoleProcessLock, lock_key

INTERVAL = 0.2
DEADLINE = 10.0


def _spawn(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    return asyncio.ensure_future(work)


async def _until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _terminate(url: str, key: int) -> int:
    """End the server session holding ``key`` (what a dead network or process looks like)."""
    plain = url.split("?", 1)[0]
    with psycopg.connect(plain, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND ((classid::bigint << 32) | objid::bigint) = %s::bigint",
            (key,),
        ).fetchall()
    return len(rows)


@pytest.fixture
def key() -> int:
    return lock_key(f"test-{uuid.uuid4()}")


def test_keys_are_signed_64_bit_and_differ_per_node() -> None:
    keys = {lock_key(f"node-{n}") for n in range(100)}
    assert len(keys) == 100
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert any(k < 0 for k in keys)


async def test_one_session_holds_the_lock_until_it_is_gone(
    postgres_schema_url: str, key: int
) -> None:
    first = AdvisoryLock(postgres_schema_url, key, timeout=5)
    second = AdvisoryLock(postgres_schema_url, key, timeout=5)
    try:
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await first.still_held()
        assert not await second.still_held()
        assert _terminate(postgres_schema_url, key) == 1
        assert not await first.still_held()
        assert await second.try_acquire()
        assert not await first.try_acquire()
        await second.release()
        assert await first.try_acquire()
    finally:
        await first.release()
        await second.release()


async def test_an_unreachable_database_means_no_lead(key: int) -> None:
    lock = AdvisoryLock("postgresql://postgres@127.0.0.1:1/none", key, timeout=1)
    assert not await lock.try_acquire()
    assert not await lock.still_held()
    await lock.release()


async def test_leadership_moves_when_the_leader_loses_its_session(
    postgres_schema_url: str, key: int
) -> None:
    running: dict[str, int] = {"a": 0, "b": 0}
    cancelled: list[str] = []

    def work(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def lead() -> None:
            running[name] += 1
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise

        return lead

    a = Leadership(AdvisoryLock(postgres_schema_url, key, timeout=2), interval=INTERVAL)
    b = Leadership(AdvisoryLock(postgres_schema_url, key, timeout=2), interval=INTERVAL)
    tasks = [asyncio.ensure_future(a.run(work("a"), _spawn))]
    await _until("a leads", lambda: a.is_leader)
    tasks.append(asyncio.ensure_future(b.run(work("b"), _spawn)))
    await asyncio.sleep(INTERVAL * 3)  # b keeps trying meanwhile: it must not lead
    assert not b.is_leader
    assert running == {"a": 1, "b": 0}
    try:
        lost = time.monotonic()
        assert _terminate(postgres_schema_url, key) == 1
        await _until("b leads", lambda: b.is_leader)
        await _until("a steps down", lambda: not a.is_leader)
        assert time.monotonic() - lost < 5 * INTERVAL + 2
        assert cancelled == ["a"]
        assert running == {"a": 1, "b": 1}
        tasks[1].cancel()  # b stops: its lock is released and a takes over again
        await _until("a leads again", lambda: a.is_leader)
        assert running == {"a": 2, "b": 1}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_sole_process_leads_and_its_failures_surface() -> None:
    async def fail() -> None:
        raise RuntimeError("watcher broke")

    leadership = Leadership(SoleProcessLock(), interval=INTERVAL)
    with pytest.raises(RuntimeError, match="watcher broke"):
        await asyncio.wait_for(leadership.run(fail, _spawn), DEADLINE)
    assert not leadership.is_leader
