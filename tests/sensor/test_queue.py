from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import orjson

from dtim.model import Sighting, TailPosition, make_indicator
from dtim.sensor.queue import SIGHTINGS_PER_BATCH, SensorQueue

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _sightings(count: int) -> list[Sighting]:
    return [
        Sighting(
            make_indicator(f"45.13.{n // 250}.{n % 250 + 1}", now=NOW), "ufw", "ufw-port-scan", NOW
        )
        for n in range(count)
    ]


async def test_batches_and_positions_are_kept_together_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "data" / "sensor-queue.db"
    queue = SensorQueue(path)
    await queue.open()
    position = TailPosition("ufw", "/var/log/ufw.log", 7, 4096, "ab" * 8)
    await queue.commit(_sightings(SIGHTINGS_PER_BATCH + 3), [position])
    await queue.commit([], [TailPosition("ufw", "/var/log/ufw.log", 7, 8192, "ab" * 8)])
    await queue.commit(_sightings(1), [])
    assert queue.added.is_set()
    backlog = await queue.backlog()
    assert (backlog.batches, backlog.sightings, backlog.parked) == (3, SIGHTINGS_PER_BATCH + 4, 0)
    assert (await queue.position("ufw", "/var/log/ufw.log")) == TailPosition(
        "ufw", "/var/log/ufw.log", 7, 8192, "ab" * 8
    )
    assert await queue.position("ufw", "/other") is None
    await queue.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    reopened = SensorQueue(path)
    await reopened.open()
    first, second, third = await reopened.oldest(10, 10 * 1024 * 1024)
    assert (first.sightings, second.sightings, third.sightings) == (SIGHTINGS_PER_BATCH, 3, 1)
    assert len(orjson.loads(first.body)) == SIGHTINGS_PER_BATCH
    assert [b.seq for b in await reopened.oldest(10, 1)] == [first.seq]  # always at least one
    await reopened.remove([first])
    await reopened.park(second, "400: bad")
    assert [b.batch_id for b in await reopened.oldest(10, 10**9)] == [third.batch_id]
    assert (await reopened.backlog()).parked == 1
    await reopened.set_state("watchers.stats", {"ufw": {"lines": 3}})
    assert await reopened.get_state("watchers.stats") == {"ufw": {"lines": 3}}
    assert await reopened.get_state("other") is None
    await reopened.close()


async def test_a_loose_buffer_file_is_tightened_to_0600(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    path.touch(mode=0o644)
    queue = SensorQueue(path)
    await queue.open()
    await queue.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
