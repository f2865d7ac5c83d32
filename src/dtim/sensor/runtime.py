"""``dtim sensor run``: the watchers of the sensor's own config, feeding a node over TLS.

The watchers are built and run exactly as the node runs its own
(:class:`dtim.watchers.supervisor.WatcherSupervisor`), with the sensor's
on-disk buffer as their sink. The forwarder sends the oldest buffered batches
to the node, deletes them once the node confirmed, and backs off while the
node is unreachable; nothing is dropped on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from dtim.errors import ConfigError
from dtim.sensor.client import NodeClient, NodeUnreachable, SubmissionRefused, tls_context
from dtim.sensor.queue import QUEUE_FILE, QueuedBatch, SensorQueue
from dtim.watchers.supervisor import WatcherConfig, WatcherSupervisor

log = logging.getLogger("dtim.sensor")


@dataclass(frozen=True)
class ForwardOptions:
    """How the forwarder paces itself.

    Attributes:
        max_batches: batches per request.
        max_bytes: request body size to stay under (the node refuses larger with 413).
        idle_seconds: longest wait for new batches before looking again.
        min_backoff: first wait after the node could not be reached.
        max_backoff: longest wait between attempts while it stays unreachable.
    """

    max_batches: int = 100
    max_bytes: int = 1024 * 1024
    idle_seconds: float = 1.0
    min_backoff: float = 0.5
    max_backoff: float = 30.0


class Forwarder:
    """Sends buffered batches to the node in order until stopped."""

    def __init__(
        self, queue: SensorQueue, client: NodeClient, options: ForwardOptions | None = None
    ) -> None:
        self.queue = queue
        self.client = client
        self.options = options or ForwardOptions()
        self.sent = 0
        self._max_batches = self.options.max_batches
        self._outage = False

    async def flush_once(self) -> bool:
        """Send the oldest batches once; True when something was confirmed or parked.

        Raises:
            NodeUnreachable: the node did not take them (they stay buffered).
            SubmissionRefused: the token was refused (they stay buffered).
        """
        batches = await self.queue.oldest(self._max_batches, self.options.max_bytes)
        if not batches:
            return False
        try:
            answer = await self.client.submit(batches)
        except SubmissionRefused as exc:
            if exc.status in (401, 403):
                raise
            await self._refused(batches, exc)
            return True
        await self.queue.remove(batches)
        self.sent += len(batches)
        self._max_batches = self.options.max_batches
        if self._outage:
            self._outage = False
            log.info("node reachable again; sending what was buffered")
        log.debug("node took %d batch(es): %s", len(batches), answer)
        return True

    async def _refused(self, batches: list[QueuedBatch], exc: SubmissionRefused) -> None:
        if len(batches) > 1:
            # Find the batch at fault (or a size the node accepts) by sending fewer at a time.
            self._max_batches = max(1, len(batches) // 2)
            return
        await self.queue.park(batches[0], f"{exc.status}: {exc.reason}")
        log.error(
            "the node refused batch %s for good (%s); it is kept in the buffer's parked table",
            batches[0].batch_id,
            exc,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Flush whenever something is buffered; back off while the node is away."""
        delay = self.options.min_backoff
        while not stop.is_set():
            self.queue.added.clear()
            try:
                progressed = await self.flush_once()
            except (NodeUnreachable, SubmissionRefused) as exc:
                if not self._outage:
                    log.warning("cannot deliver to the node (%s); buffering on disk", exc)
                    self._outage = True
                await _wait(stop, delay)
                delay = min(self.options.max_backoff, delay * 2)
                continue
            delay = self.options.min_backoff
            if not progressed:
                await _wait_any(stop, self.queue.added, self.options.idle_seconds)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can drop a cancellation.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def _wait_any(stop: asyncio.Event, added: asyncio.Event, seconds: float) -> None:
    async with asyncio.TaskGroup() as group:
        waiters = [group.create_task(stop.wait()), group.create_task(added.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


async def run_sensor(
    watchers: WatcherConfig,
    home: Path,
    *,
    node_url: str,
    token: str,
    ca: Path | None = None,
    request_timeout: float = 10.0,
    stop: asyncio.Event | None = None,
    options: ForwardOptions | None = None,
) -> None:
    """Run the sensor until ``stop`` is set (or SIGINT/SIGTERM when none is given).

    Args:
        watchers: the sensor's ``[watchers]`` and ``[privacy]`` values
            (``dtim.service.watcher_config`` reads them from its settings).
        home: the sensor home; the buffer is ``data/sensor-queue.db`` in it.

    Raises:
        ConfigError: no watcher is on, a bad watcher setting, a bad node URL or CA file.
        StoreError: the buffer file cannot be opened.
    """
    if not token:
        raise ConfigError(
            "a sensor token is needed (dtim sensor token add on the node)", key="--token"
        )
    verify = tls_context(ca)
    client = NodeClient(node_url, token, verify=verify, timeout=request_timeout)
    queue = SensorQueue(home / QUEUE_FILE)
    supervisor = WatcherSupervisor(watchers, queue, queue)
    if not supervisor.runners:
        raise ConfigError("no watcher is on: set a log path in [watchers]", key="watchers")
    own_stop = stop is None
    stopping = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_stop:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
    await queue.open()
    try:
        backlog = await queue.backlog()
        log.info(
            "sensor: watchers %s -> %s (%d batch(es) buffered)",
            ", ".join(supervisor.names),
            node_url,
            backlog.batches,
        )
        async with client, asyncio.TaskGroup() as group:
            group.create_task(supervisor.run(stopping), name="sensor-watchers")
            group.create_task(Forwarder(queue, client, options).run(stopping), name="forwarder")
    finally:
        if own_stop:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        await queue.close()
