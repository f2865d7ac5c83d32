"""The node's watchers: which are on, running them side by side, publishing their counters.

A built-in watcher is on when its ``[watchers]`` path is set (``ufw_log_path``,
``zeek_log_dir`` ...; ``service.watcher_config`` reads them into a
:class:`WatcherConfig`). A plugin's watcher is on when its own table gives a
path: ``[watchers.<name>] path = "..."``. Each runs in its own task; one that
cannot start (ClamAV with neither clamd nor clamscan) is reported in its
counters and retried, never fatal to the node. Counters are written to the
store's state under :data:`STATS_STATE_KEY` for ``dtim status`` and the
dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import pluggy

from dtim.errors import StoreError, WatcherError
from dtim.model import Clock, JsonValue, SystemClock
from dtim.watchers.base import InputKind, SightingSink, WatcherContext, WatcherSpec, parse_networks
from dtim.watchers.clamav import ClamavWatcher
from dtim.watchers.clamscan import DirectoryScanner, choose_engine
from dtim.watchers.plugins import make_plugin_manager, registered_watchers
from dtim.watchers.runner import WatcherRunner, WatcherStats, sources_for

log = logging.getLogger("dtim.watchers")

STATS_STATE_KEY = "watchers.stats"
PLUGIN_PATH_OPTION = "path"
ENGINE_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class WatcherConfig:
    """What the supervisor needs from ``[watchers]`` and ``[privacy]``, as plain values.

    Attributes:
        paths: built-in watcher name -> its path (empty: off).
        rules: the ``[watchers.<name>]`` tables; a plugin's ``path`` option turns it on.
        start_at: where to start in a file seen for the first time.
        own_networks: the node's own ranges (CIDR strings).
        own_domains: the node's own domains.
    """

    paths: Mapping[str, str]
    rules: Mapping[str, Mapping[str, object]]
    start_at: str = "end"
    own_networks: tuple[str, ...] = ()
    own_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnabledWatcher:
    """A watcher the settings turn on: its spec, what it reads and its table."""

    spec: WatcherSpec
    path: str
    options: Mapping[str, object]


def enabled_watchers(
    config: WatcherConfig, specs: Mapping[str, WatcherSpec]
) -> list[EnabledWatcher]:
    """The watchers ``config`` turns on, in name order."""
    enabled: list[EnabledWatcher] = []
    for name, spec in sorted(specs.items()):
        table = dict(config.rules.get(name, {}))
        plugin_path = table.pop(PLUGIN_PATH_OPTION, "")
        path = config.paths.get(name, plugin_path)
        if isinstance(path, str) and path:
            enabled.append(EnabledWatcher(spec, path, table))
    return enabled


class StateWriter(Protocol):
    """What the supervisor needs of the store (:class:`dtim.store.Store` fits)."""

    async def set_state(self, key: str, value: JsonValue) -> None:
        """Keep ``value`` under ``key``."""
        ...


class ScanRunner:
    """Runs the ClamAV watcher over its scan directory (new files hashed and scanned)."""

    def __init__(
        self,
        watcher: ClamavWatcher,
        directory: str,
        sink: SightingSink,
        poll_interval: float,
        *,
        retry_seconds: float = ENGINE_RETRY_SECONDS,
        settle_seconds: float = 2.0,
    ) -> None:
        self.watcher = watcher
        self.directory = directory
        self.sink = sink
        self.poll_interval = poll_interval
        self.retry_seconds = retry_seconds
        self.settle_seconds = settle_seconds
        self.stats = WatcherStats(watcher.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Find an engine (retrying while there is none), then scan until ``stop``."""
        scanner: DirectoryScanner | None = None
        while not stop.is_set():
            if scanner is None:
                try:
                    engine = await choose_engine(
                        self.watcher.clamd_socket, self.watcher.clamscan, self.watcher.database
                    )
                except WatcherError as exc:
                    self._problem(str(exc))
                    await _wait(stop, self.retry_seconds)
                    continue
                scanner = DirectoryScanner(
                    self.watcher, self.directory, engine, settle_seconds=self.settle_seconds
                )
            scanned, infected = scanner.scanned, scanner.infected
            try:
                found = await scanner.poll_once(self.sink)
            except (WatcherError, StoreError) as exc:
                # clamd stopped, clamscan failed or the store refused the commit (a full
                # disk): nothing of this poll was committed, so a fresh scanner (engine
                # chosen again) rescans those files after the pause.
                self._problem(str(exc))
                scanner = None
                await _wait(stop, self.retry_seconds)
                continue
            self.stats.sightings += len(found)
            self.stats.lines += scanner.scanned - scanned  # a new scanner counts from 0
            self.stats.observations += scanner.infected - infected
            if scanner.problem:
                self._problem(scanner.problem)
            else:
                self.stats.problems.clear()
            await _wait(stop, self.poll_interval)

    def _problem(self, problem: str) -> None:
        if self.stats.problems.get(self.directory) != problem:
            log.warning("%s: %s (will retry)", self.watcher.name, problem)
        self.stats.problems[self.directory] = problem


class WatcherSupervisor:
    """Builds the enabled watchers and runs them until stopped.

    Args:
        config: which watchers are on, their tables, the node's own networks and domains.
        sink: where sightings and tail positions are committed (the store, sealed evidence).
        store: where counters are published (``set_state``).
        poll_interval: seconds between polls of every source.
        stats_interval: seconds between counter publications.

    Raises:
        ConfigError: on construction, a watcher's table or ``privacy.own_networks`` is invalid.
    """

    def __init__(
        self,
        config: WatcherConfig,
        sink: SightingSink,
        store: StateWriter,
        *,
        clock: Clock | None = None,
        poll_interval: float = 1.0,
        stats_interval: float = 5.0,
        manager: pluggy.PluginManager | None = None,
    ) -> None:
        self.sink = sink
        self.store = store
        self.stats_interval = stats_interval
        specs = registered_watchers(manager or make_plugin_manager())
        networks = parse_networks(list(config.own_networks))
        self.runners: list[WatcherRunner | ScanRunner] = []
        for enabled in enabled_watchers(config, specs):
            context = WatcherContext(
                settings=enabled.options,
                own_networks=networks,
                own_domains=config.own_domains,
                clock=clock or SystemClock(),
            )
            watcher = enabled.spec.create(context)
            if enabled.spec.input is InputKind.SCAN and isinstance(watcher, ClamavWatcher):
                self.runners.append(ScanRunner(watcher, enabled.path, sink, poll_interval))
                continue
            sources = sources_for(
                enabled.spec.name, enabled.spec.input, enabled.path, start_at=config.start_at
            )
            self.runners.append(WatcherRunner(watcher, sources, sink, poll_interval=poll_interval))

    @property
    def names(self) -> list[str]:
        """Names of the running watchers."""
        return [runner.stats.name for runner in self.runners]

    def stats(self) -> dict[str, JsonValue]:
        """Every watcher's counters, by name."""
        return {runner.stats.name: runner.stats.to_json() for runner in self.runners}

    async def run(self, stop: asyncio.Event) -> None:
        """Run every watcher until ``stop`` is set; publish counters meanwhile and at the end.

        Raises:
            the first error of a watcher task (the node stops on it).
        """
        if not self.runners:
            return
        log.info("watchers: %s", ", ".join(self.names))
        try:
            # A task group: a watcher that fails cancels the others and its error surfaces.
            async with asyncio.TaskGroup() as group:
                for runner in self.runners:
                    group.create_task(runner.run(stop), name=f"watcher-{runner.stats.name}")
                group.create_task(self._publish_until(stop), name="watcher-stats")
        except BaseExceptionGroup as failed:
            # The node reports its first error in one line (a full disk, a read-only store):
            # an exception group would reach the operator as a traceback.
            raise first_error(failed) from None
        finally:
            with contextlib.suppress(StoreError):  # the store that just failed may still fail
                await self.publish()

    async def _publish_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.publish()
            except StoreError as exc:  # a full disk: the runners retry their commits too
                log.warning("watcher counters not saved: %s", exc)
            await _wait(stop, self.stats_interval)

    async def publish(self) -> None:
        """Write the counters into the store's state."""
        await self.store.set_state(STATS_STATE_KEY, self.stats())


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a task group, groups inside it opened."""
    first = group.exceptions[0]
    return first_error(first) if isinstance(first, BaseExceptionGroup) else first


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can drop a cancellation.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
