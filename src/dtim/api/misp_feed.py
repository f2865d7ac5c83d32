"""A MISP feed served over HTTP, so a MISP instance can subscribe to a node.

MISP pulls a feed (Sync Actions > Feeds, input source "Network", format
"MISP Feed") by fetching ``<url>/manifest.json``, then each ``<event uuid>.json``
it lists, and ``<url>/hashes.csv`` for feed correlation. The node writes the
feed the way ``dtim indicators export --format misp`` does, into a directory of
its own, and serves the files from the last complete build. A request for the
manifest rebuilds the feed first when the store has changed since the last
build and that build is at least ``min_age`` seconds old, so one MISP pull
(manifest first, events after) reads one consistent build and a busy node is
not re-exported on every poll.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
HASHES = "hashes.csv"
_EVENT_FILE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json")
DEFAULT_MIN_AGE = 60.0
"""Seconds a build is served before a changed store makes the next manifest request rebuild."""


def is_feed_file(name: str) -> bool:
    """Whether ``name`` is a file a MISP feed has (anything else is not served)."""
    return name in (MANIFEST, HASHES) or _EVENT_FILE.fullmatch(name) is not None


@dataclass(frozen=True)
class _Build:
    directory: Path
    version: int
    built_at: float


class MispFeedFiles:
    """Builds of the node's MISP feed in ``root``, the newest served.

    Args:
        root: a directory of the node's own (``data/misp-feed``); emptied on first use.
        build: writes the feed into the directory it is given; returns the indicator count.
        version: the store's change number, so an unchanged store is not exported again.
        min_age: see :data:`DEFAULT_MIN_AGE`.
    """

    def __init__(
        self,
        root: Path,
        build: Callable[[Path], Awaitable[int]],
        version: Callable[[], Awaitable[int]],
        *,
        min_age: float = DEFAULT_MIN_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._root = root
        self._build = build
        self._version = version
        self._min_age = min_age
        self._clock = clock
        self._current: _Build | None = None
        self._previous: _Build | None = None
        self._serial = 0
        self._lock = asyncio.Lock()

    async def file(self, name: str) -> Path | None:
        """The path of feed file ``name`` in the build to serve, or None when there is none.

        Raises:
            DTIMError: the feed could not be written (the store or the disk failed).
        """
        if not is_feed_file(name):
            return None
        build = await self._fresh(rebuild_when_changed=name == MANIFEST)
        path = build.directory / name
        return path if path.is_file() else None

    async def _fresh(self, *, rebuild_when_changed: bool) -> _Build:
        async with self._lock:
            current = self._current
            if current is not None and not rebuild_when_changed:
                return current
            version = await self._version()
            if current is not None and (
                version == current.version or self._clock() - current.built_at < self._min_age
            ):
                return current
            return await self._rebuild(version)

    async def _rebuild(self, version: int) -> _Build:
        if self._current is None:
            shutil.rmtree(self._root, ignore_errors=True)  # builds of an earlier process
        self._serial += 1
        directory = self._root / f"build-{self._serial}"
        try:
            await self._build(directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        # The build before stays until the next one: a MISP pull that read its manifest
        # may still be fetching its events.
        if self._previous is not None:
            await asyncio.to_thread(shutil.rmtree, self._previous.directory, True)
        self._previous = self._current
        self._current = _Build(directory, version, self._clock())
        return self._current
