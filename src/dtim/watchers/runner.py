"""The watcher loop: read batches, parse, detect, commit sightings with positions, count problems.

:class:`WatcherRunner` drives one watcher over its sources (file tailers or a
directory follower). ``poll_once`` is deterministic and used by tests;
``run`` repeats it every ``poll_interval`` seconds until stopped. Bad lines
raise ``ParseError`` in the parser; the loop counts them per source
(:class:`WatcherStats`, shown by ``dtim status``), logs them with a rate
limit, and goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dtim.errors import ParseError, StoreError, WatcherError
from dtim.model import JsonValue, Sighting, TailPosition
from dtim.watchers.base import (
    InputKind,
    LineParser,
    QuietScreen,
    SightingSink,
    Watcher,
)
from dtim.watchers.directory import DirectoryFollower
from dtim.watchers.tail import FileTailer, TailBatch
from dtim.watchers.zeekformat import LOGS

log = logging.getLogger("dtim.watchers")
_LOGGED_ERRORS = 10
_LOG_EVERY = 1000
_PARSER_CACHE = 64
SLICE_LINES = 128
"""Lines parsed between two yields to the event loop (a few milliseconds of work)."""
STORE_PROBLEM = "store"
"""Key of ``WatcherStats.problems`` while commits fail."""


class LineSource(Protocol):
    """A tailer or directory follower: restore once, then read batches."""

    problem: str | None

    async def restore(self, sink: SightingSink) -> None:
        """Decide where to start from the saved positions."""
        ...

    def read(self) -> TailBatch | None:
        """The next batch of complete lines, or None when there is nothing new."""
        ...

    def close(self) -> None:
        """Release open files."""
        ...


@dataclass
class WatcherStats:
    """Counters of one watcher, for ``dtim status``.

    Attributes:
        lines: lines read (oversized ones included).
        observations: lines a parser understood and returned.
        ignored: blank lines and lines the parser understood but that carry nothing.
        sightings: sightings committed.
        parse_errors: malformed, truncated or binary lines, and invalid indicator values.
        oversized: lines over the length cap, skipped unread.
        patterns: observations per parser pattern.
        problems: paths currently missing or unreadable, with the reason, and ``"store"``
            while commits fail.
        last_error: the most recent parse error message.
    """

    name: str
    lines: int = 0
    observations: int = 0
    ignored: int = 0
    sightings: int = 0
    parse_errors: int = 0
    oversized: int = 0
    commits: int = 0
    patterns: Counter[str] = field(default_factory=Counter)
    problems: dict[str, str] = field(default_factory=dict)
    last_error: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """Plain JSON for the status API."""
        return {
            "name": self.name,
            "lines": self.lines,
            "observations": self.observations,
            "ignored": self.ignored,
            "sightings": self.sightings,
            "parse_errors": self.parse_errors,
            "oversized": self.oversized,
            "commits": self.commits,
            "patterns": dict(self.patterns),
            "problems": dict(self.problems),
            "last_error": self.last_error,
        }


class LineProcessor:
    """Parses and detects lines for one watcher, counting into its stats.

    A watcher that is a :class:`~dtim.watchers.base.QuietScreen` has each batch screened
    first, and only its noisy lines parsed (``screen=False`` parses every line).
    """

    def __init__(
        self, watcher: Watcher, stats: WatcherStats | None = None, *, screen: bool = True
    ) -> None:
        self.watcher = watcher
        self.stats = stats if stats is not None else WatcherStats(watcher.name)
        self._parsers: dict[str, LineParser] = {}
        self._screen = watcher.screen if screen and isinstance(watcher, QuietScreen) else None

    def parser(self, file: str) -> LineParser:
        """The parser for one file, kept while the file is being read."""
        parser = self._parsers.get(file)
        if parser is None:
            if len(self._parsers) >= _PARSER_CACHE:
                self._parsers.clear()
            parser = self._parsers[file] = self.watcher.parser_for(file)
        return parser

    def lines(
        self, file: str, lines: Sequence[str], first_line: int | None, oversized: int = 0
    ) -> list[Sighting]:
        """Process lines of one file and return the sightings they complete."""
        stats = self.stats
        stats.lines += len(lines)
        stats.oversized += oversized
        parse = self.parser(file).parse
        detect = self.watcher.detect
        patterns = stats.patterns
        found: list[Sighting] = []
        ignored = observed = 0
        positions: Iterable[int] = range(len(lines))
        if self._screen is not None and lines:
            screened = self._screen(lines)
            positions = screened.noisy
            observed = sum(screened.quiet.values())
            patterns.update(screened.quiet)
        for index in positions:
            line = lines[index]
            if not line or line.isspace():
                ignored += 1
                continue
            try:
                if "\x00" in line:
                    raise ParseError(self.watcher.name, "binary data (NUL bytes) in line")
                observation = parse(line)
                if observation is None:
                    ignored += 1
                    continue
                observed += 1
                patterns[observation.pattern] += 1
                result = detect(observation)
                if result:
                    found.extend(result)
            except ParseError as exc:
                self._error(exc, file, None if first_line is None else first_line + index)
        stats.ignored += ignored
        stats.observations += observed
        stats.sightings += len(found)
        return found

    def _error(self, exc: ParseError, file: str, number: int | None) -> None:
        stats = self.stats
        stats.parse_errors += 1
        where = f"{file}:{number}" if number is not None else file
        stats.last_error = f"{where}: {exc}"
        if stats.parse_errors <= _LOGGED_ERRORS or stats.parse_errors % _LOG_EVERY == 0:
            log.warning("skipped a bad line (%d so far): %s", stats.parse_errors, stats.last_error)


class WatcherRunner:
    """Runs one watcher over its sources and commits what it finds.

    Args:
        watcher: the configured watcher.
        sources: tailers or directory followers.
        sink: where sightings and positions are committed together.
        poll_interval: seconds between polls in :meth:`run`.
        stats: counters to update (a fresh one by default).
        retry: first and longest wait (seconds) between attempts of a refused commit.
    """

    def __init__(
        self,
        watcher: Watcher,
        sources: Sequence[LineSource],
        sink: SightingSink,
        *,
        poll_interval: float = 1.0,
        stats: WatcherStats | None = None,
        retry: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        self.watcher = watcher
        self.sources = list(sources)
        self.sink = sink
        self.poll_interval = poll_interval
        self.retry_first, self.retry_max = retry
        self.processor = LineProcessor(watcher, stats)
        self.stats = self.processor.stats
        self._started = False

    async def start(self) -> None:
        """Restore every source from its saved position."""
        for source in self.sources:
            await source.restore(self.sink)
            self._note_problem(source)
        self._started = True

    def _note_problem(self, source: LineSource) -> None:
        key = getattr(source, "path", None) or getattr(source, "directory", "?")
        if source.problem is None:
            if self.stats.problems.pop(str(key), None) is not None:
                log.info("%s: %s is readable again", self.watcher.name, key)
        elif self.stats.problems.get(str(key)) != source.problem:
            self.stats.problems[str(key)] = source.problem
            log.warning("%s: %s (will retry)", self.watcher.name, source.problem)

    async def poll_once(self, max_batches: int = 1000) -> int:
        """Read what is new in every source, process it, commit it; return the lines read."""
        if not self._started:
            await self.start()
        total = 0
        for source in self.sources:
            for _ in range(max_batches):
                batch = source.read()
                if batch is None:
                    break
                total += len(batch.lines)
                found = await self._process(batch)
                positions = [batch.position] if batch.position is not None else []
                if found or positions:
                    await self._commit(found, positions)
                await asyncio.sleep(0)
            self._note_problem(source)
        return total

    async def _commit(self, found: list[Sighting], positions: list[TailPosition]) -> None:
        """Commit, retrying with backoff while the store refuses writes (a full disk): the
        batch stays in hand, so nothing read is lost or counted twice, and the node stays
        up, its ``/readyz`` saying why."""
        delay = self.retry_first
        while True:
            try:
                await self.sink.commit(found, positions)
            except StoreError as exc:
                if STORE_PROBLEM not in self.stats.problems:
                    log.warning("%s: %s; retrying, nothing read is lost", self.watcher.name, exc)
                self.stats.problems[STORE_PROBLEM] = f"cannot commit: {exc}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if self.stats.problems.pop(STORE_PROBLEM, None) is not None:
                log.info("%s: the store takes writes again", self.watcher.name)
            self.stats.commits += 1
            return

    async def _process(self, batch: TailBatch) -> list[Sighting]:
        # Parsing runs on the node's event loop: a batch (up to a megabyte of lines) is
        # processed in slices with a yield between them, so the peer API and gossip keep
        # answering while a watcher catches up on a busy log.
        lines, first = batch.lines, batch.first_line
        found = self.processor.lines(batch.file, lines[:SLICE_LINES], first, batch.oversized)
        for start in range(SLICE_LINES, len(lines), SLICE_LINES):
            await asyncio.sleep(0)
            found += self.processor.lines(
                batch.file,
                lines[start : start + SLICE_LINES],
                None if first is None else first + start,
            )
        return found

    def close(self) -> None:
        """Close every source's open files."""
        for source in self.sources:
            source.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set, then close the sources."""
        try:
            await self.start()
            while not stop.is_set():
                await self.poll_once()
                try:
                    async with asyncio.timeout(self.poll_interval):
                        await stop.wait()
                except TimeoutError:
                    continue
        finally:
            self.close()


def sources_for(
    name: str, kind: InputKind, path: str, *, start_at: str = "end", logs: tuple[str, ...] = ()
) -> list[LineSource]:
    """The line sources of a file or directory watcher (``clamav``'s scan directory uses
    :class:`dtim.watchers.clamscan.DirectoryScanner` instead).

    Raises:
        WatcherError: ``kind`` is a scan, which has no line sources.
    """
    if kind is InputKind.FILE:
        return [FileTailer(name, path, start_at=start_at)]
    if kind is InputKind.DIRECTORY:
        return [DirectoryFollower(name, path, logs or LOGS, start_at=start_at)]
    raise WatcherError(f"{name} scans files; run it with dtim.watchers.clamscan.DirectoryScanner")
