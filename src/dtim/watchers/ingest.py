"""Running a watcher once over whole files (``dtim ingest``), without tailing.

Sightings are committed in chunks with no tail positions: a one-shot run must
not move the running watcher's place in a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from dtim.model import Indicator, Sighting, TailPosition, merge
from dtim.watchers.base import SightingSink, Watcher
from dtim.watchers.runner import LineProcessor, WatcherStats
from dtim.watchers.tail import FileTailer

Progress = Callable[[int], None]
"""Called with the number of bytes just processed."""
LOG_SUFFIXES = (".log", ".log.gz", ".json", ".json.gz", ".txt")
COMMIT_SIGHTINGS = 2000
"""Sightings held before a commit: each transaction has a fixed cost, and a one-shot
run has no position to keep in step with its sightings."""


class RecordingSink:
    """Forwards to another sink and keeps the sightings, to print what was committed."""

    def __init__(self, inner: SightingSink) -> None:
        self.inner = inner
        self.sightings: list[Sighting] = []

    async def commit(
        self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]
    ) -> None:
        """Forward, then remember."""
        await self.inner.commit(sightings, positions)
        self.sightings.extend(sightings)

    async def position(self, watcher: str, path: str) -> TailPosition | None:
        """Forward."""
        return await self.inner.position(watcher, path)


def expand(paths: Sequence[str]) -> list[str]:
    """Files to read: files as given, directories walked for log files (sorted)."""
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, _dirs, names in sorted(os.walk(path)):
                files.extend(
                    os.path.join(root, n) for n in sorted(names) if n.endswith(LOG_SUFFIXES)
                )
        else:
            files.append(path)
    return files


async def ingest(
    watcher: Watcher,
    paths: Sequence[str],
    sink: SightingSink,
    *,
    progress: Progress | None = None,
    stats: WatcherStats | None = None,
) -> WatcherStats:
    """Read every file to its end through ``watcher``, committing sightings to ``sink``."""
    processor = LineProcessor(watcher, stats)
    pending: list[Sighting] = []
    for file in expand(paths):
        tailer = FileTailer.whole(file)
        done = 0
        while (batch := tailer.read()) is not None:
            pending += processor.lines(batch.file, batch.lines, batch.first_line, batch.oversized)
            if len(pending) >= COMMIT_SIGHTINGS:
                await _commit(sink, pending, processor.stats)
                pending = []
            if progress is not None and batch.position is not None:
                progress(batch.position.offset - done)
                done = batch.position.offset
        if tailer.problem is not None:
            processor.stats.problems[file] = tailer.problem
    tail = list(watcher.flush())
    processor.stats.sightings += len(tail)
    await _commit(sink, pending + tail, processor.stats)
    return processor.stats


async def _commit(sink: SightingSink, found: list[Sighting], stats: WatcherStats) -> None:
    if found:
        await sink.commit(found, [])
        stats.commits += 1


def detections(sightings: Sequence[Sighting]) -> list[tuple[Indicator, str, int]]:
    """Sightings folded per (indicator, rule): merged indicator, rule, number of sightings."""
    folded: dict[tuple[str, str], tuple[Indicator, int]] = {}
    for sighting in sightings:
        key = (sighting.indicator.id, sighting.rule)
        known = folded.get(key)
        if known is None:
            folded[key] = (sighting.indicator, 1)
        else:
            folded[key] = (merge(known[0], sighting.indicator), known[1] + 1)
    rows = [(indicator, rule, count) for (_, rule), (indicator, count) in folded.items()]
    rows.sort(key=lambda row: (row[0].first_seen, row[0].type, row[0].value, row[1]))
    return rows
