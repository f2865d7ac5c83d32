"""A sensor tailing a real file feeds a node over TLS; the node goes away and comes back."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from dtim.sensor.queue import QUEUE_FILE
from dtim.sensor.runtime import ForwardOptions, run_sensor
from dtim.watchers.supervisor import WatcherConfig
from tests.mesh.cluster import free_port
from tests.sensor.conftest import Node, drop_connections, ufw_scan
from tests.servers import running_server

DEADLINE = 30.0
FAST = ForwardOptions(idle_seconds=0.2, min_backoff=0.1, max_backoff=0.5)


async def _until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _buffered(home: Path) -> int:
    """Sightings waiting in the sensor's buffer (read-only look at its file)."""
    path = home / QUEUE_FILE
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            return int(db.execute("SELECT coalesce(sum(sightings), 0) FROM batches").fetchone()[0])
        except sqlite3.OperationalError:  # the sensor has not created its tables yet
            return 0


async def test_everything_arrives_once_across_a_node_outage(node: Node, tmp_path: Path) -> None:
    log = tmp_path / "ufw.log"
    log.write_text("")
    home = tmp_path / "sensor"
    watchers = WatcherConfig(paths={"ufw": str(log)}, rules={}, start_at="beginning")
    port = free_port()
    stop = asyncio.Event()

    async def sensor() -> None:
        await run_sensor(
            watchers,
            home,
            node_url=f"https://127.0.0.1:{port}",
            token=node.token,
            ca=node.ca_file,
            request_timeout=5,
            stop=stop,
            options=FAST,
        )

    async def arrived(*values: str) -> bool:
        found = [await node.store.find_indicator("ipv4", v) for v in values]
        return all(found)

    task = asyncio.ensure_future(sensor())
    try:
        with running_server(node.app, ssl_context=node.server_tls, mtls=False, port=port) as up:
            with log.open("a") as out:
                out.write(ufw_scan("45.13.9.1"))
            await _until("the first scan on the node", lambda: arrived("45.13.9.1"))
            drop_connections(up)  # the node goes away as a crash would: connections reset

        # The node is down: the sensor keeps reading and buffers on disk.
        later = ["45.13.9.2", "45.13.9.3", "45.13.9.4"]
        with log.open("a") as out:
            for minute, source in enumerate(later, start=1):
                out.write(ufw_scan(source, minute=minute))

        async def buffered() -> bool:
            return _buffered(home) == len(later)

        await _until("three sightings buffered", buffered)
        assert not await arrived(*later[:1])

        with running_server(node.app, ssl_context=node.server_tls, mtls=False, port=port) as up:
            await _until("the buffered scans on the node", lambda: arrived(*later))

            async def drained() -> bool:
                return _buffered(home) == 0

            await _until("an empty buffer", drained)
            drop_connections(up)
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)

    for source in ["45.13.9.1", *later]:
        stored = await node.store.find_indicator("ipv4", source)
        assert stored is not None
        assert stored.sources == ("ufw",)
        assert len(await node.store.sightings_for(stored.id)) == 1, source
    assert (await node.store.counts()).total == 4
