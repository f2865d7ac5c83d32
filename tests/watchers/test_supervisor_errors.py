"""A store that fails under the watchers (a full disk, a read-only file) stops the supervisor
with that one error, not an exception group the node would print as a traceback."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dtim.config.settings import Settings, WatcherSettings
from dtim.demo.generator import ufw_scan
from dtim.errors import StoreError
from dtim.model import JsonValue, Sighting, TailPosition
from dtim.service import watcher_config
from dtim.watchers.supervisor import WatcherSupervisor, first_error


class FullDisk:
    """A sink and state writer whose every write fails like SQLite on a full disk."""

    def __init__(self) -> None:
        self.commits = 0

    async def commit(
        self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]
    ) -> None:
        self.commits += 1
        raise StoreError("database write failed, nothing was changed: database or disk is full")

    async def position(self, watcher: str, path: str) -> TailPosition | None:
        return None

    async def set_state(self, key: str, value: JsonValue) -> None:
        raise StoreError("database write failed, nothing was changed: database or disk is full")


async def test_a_failing_store_surfaces_as_its_own_error(tmp_path: Path) -> None:
    log = tmp_path / "ufw.log"
    log.write_text("\n".join(ufw_scan("45.10.20.30", datetime.now(UTC), random.Random(1))) + "\n")
    settings = Settings(watchers=WatcherSettings(start_at="beginning", ufw_log_path=str(log)))
    disk = FullDisk()
    supervisor = WatcherSupervisor(
        watcher_config(settings), disk, disk, poll_interval=0.05, stats_interval=60
    )
    with pytest.raises(StoreError, match="database or disk is full"):
        await asyncio.wait_for(supervisor.run(asyncio.Event()), 20)
    assert disk.commits == 1


def test_first_error_opens_nested_groups() -> None:
    inner = StoreError("disk full")
    group = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [inner]), ValueError()])
    assert first_error(group) is inner
