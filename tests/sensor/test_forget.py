"""The leader's sweep forgets sensor batch ids past their memory, and keeps the rest."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dtim.model import Sighting, SystemClock, make_indicator
from dtim.service import forget_sensor_batches, spawn
from dtim.store.sensors import BATCH_MEMORY, SensorBatch, SensorStore, sensor_batches
from tests.sensor.conftest import Node


def _batch(batch_id: str, value: str, when: datetime) -> SensorBatch:
    sighting = Sighting(make_indicator(value, now=when), "ufw", "ufw-port-scan", when)
    return SensorBatch(batch_id, [sighting], [b"sealed"])


def _remembered(node: Node) -> set[str]:
    with node.store.engine.connect() as conn:
        return set(conn.execute(select(sensor_batches.c.batch_id)).scalars())


async def test_the_sweep_forgets_batch_ids_older_than_the_memory(node: Node) -> None:
    now = datetime.now(UTC)
    sensors = SensorStore(node.store)
    [sensor] = [t for t in await sensors.tokens() if t.name == "dmz-1"]
    old = now - BATCH_MEMORY - timedelta(hours=1)
    await sensors.record_batches(sensor.id, [_batch("a" * 32, "45.13.6.1", old)], old)
    await sensors.record_batches(sensor.id, [_batch("b" * 32, "45.13.6.2", now)], now)
    assert _remembered(node) == {"a" * 32, "b" * 32}

    sweep = spawn(forget_sensor_batches(node.store, SystemClock()), name="sensor-batches")
    try:
        deadline = time.monotonic() + 10
        while _remembered(node) != {"b" * 32}:
            assert time.monotonic() < deadline, f"still remembered: {_remembered(node)}"
            await asyncio.sleep(0.02)  # polling a condition with a deadline
    finally:
        sweep.cancel()
    assert (await node.store.find_indicator("ipv4", "45.13.6.1")) is not None
