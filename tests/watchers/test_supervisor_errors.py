"""A store that refuses writes under the watchers (a full disk, a read-only file) pauses
them: the node stays up, ``/readyz`` says why, and once the store takes writes again every
line read in between is committed once, none lost, none twice."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from dtim.config.settings import Settings, WatcherSettings
from dtim.crypto.keyring import Keyring
from dtim.demo.generator import ufw_scan
from dtim.errors import StoreError
from dtim.model import indicator_id
from dtim.service import StoreSink, spawn, store_readiness, watcher_config
from dtim.store import Store
from dtim.watchers.runner import STORE_PROBLEM
from dtim.watchers.supervisor import WatcherSupervisor, first_error

SCANNER = "45.10.20.30"


def refuse_writes(store: Store, refuse: bool) -> None:
    """Triggers that abort every write the watchers make (sightings, indicators, tail
    positions, their counters) like SQLite on a full disk."""
    with store.engine.begin() as conn:
        for table in ("sightings", "indicators", "tail_positions", "state"):
            for event in ("INSERT", "UPDATE"):
                name = f"dtim_test_full_{table}_{event.lower()}"
                conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
                if refuse:
                    conn.execute(
                        text(
                            f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
                            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                        )
                    )


async def until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_full_disk_pauses_the_watchers_and_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "ufw.log"
    log.write_text("\n".join(ufw_scan(SCANNER, datetime.now(UTC), random.Random(1))) + "\n")
    settings = Settings(watchers=WatcherSettings(start_at="beginning", ufw_log_path=str(log)))
    async with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        sink = StoreSink(store, Keyring.load_or_create(tmp_path / "keys", now=datetime.now(UTC)))
        supervisor = WatcherSupervisor(
            watcher_config(settings), sink, store, poll_interval=0.05, stats_interval=0.05
        )
        refuse_writes(store, True)
        stop = asyncio.Event()
        running = spawn(supervisor.run(stop), name="watchers")

        def problems() -> dict[str, str]:
            return supervisor.runners[0].stats.problems

        await until(lambda: STORE_PROBLEM in problems(), "the refused commit")
        assert "database or disk is full" in problems()[STORE_PROBLEM]
        ready = await store_readiness(store)
        assert "database or disk is full" in ready["store"]
        assert await store.sightings_for(indicator_id("ipv4", SCANNER)) == []
        assert await store.get_position("ufw", str(log)) is None
        assert not running.done()

        refuse_writes(store, False)
        await until(lambda: STORE_PROBLEM not in problems(), "the commit once writes work")
        assert await store_readiness(store) == {}
        found = await store.sightings_for(indicator_id("ipv4", SCANNER))
        assert found
        assert len(found) == supervisor.runners[0].stats.sightings
        position = await store.get_position("ufw", str(log))
        assert position is not None
        assert position.offset == log.stat().st_size
        stop.set()
        await asyncio.wait_for(running, 10)
        assert len(await store.sightings_for(indicator_id("ipv4", SCANNER))) == len(found)


def test_first_error_opens_nested_groups() -> None:
    inner = StoreError("disk full")
    group = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [inner]), ValueError()])
    assert first_error(group) is inner
