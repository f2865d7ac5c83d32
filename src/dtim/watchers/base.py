"""Contracts every watcher shares: what parsers and detectors return, where sightings go.

A watcher turns log lines into :class:`~dtim.model.Sighting` objects in two
steps. Its *parser* reads one line into an :class:`Observation` (or ``None``
for a line it understands but that says nothing, or raises
:class:`~dtim.errors.ParseError`); its *detector* folds observations into
per-key windows and returns sightings when a rule's threshold is crossed.
The tail loop hands every sighting, together with the file position of the
lines that produced it, to a :class:`SightingSink` in one call, so the store
can commit both in one transaction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from enum import StrEnum
from typing import Protocol, runtime_checkable

from dtim.errors import ConfigError
from dtim.model import Clock, Indicator, Sighting, SystemClock, TailPosition, merge
from dtim.watchers.rules import Rule

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SettingsMapping = Mapping[str, object]
"""A watcher's ``[watchers.<name>]`` table, as plain TOML values."""


class SightingSink(Protocol):
    """Where watchers deliver what they found; the store implements it in one transaction."""

    async def commit(
        self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]
    ) -> None:
        """Record ``sightings`` and move every path in ``positions`` forward, atomically."""
        ...

    async def position(self, watcher: str, path: str) -> TailPosition | None:
        """The last committed position of ``watcher`` on ``path``, or None when never read."""
        ...


class MemorySink:
    """A sink that keeps everything in memory: for tests and ``dtim ingest`` without a store."""

    def __init__(self) -> None:
        self.sightings: list[Sighting] = []
        self.positions: dict[tuple[str, str], TailPosition] = {}
        self.commits = 0

    async def commit(
        self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]
    ) -> None:
        """Append sightings and overwrite positions."""
        self.sightings.extend(sightings)
        for position in positions:
            self.positions[(position.watcher, position.path)] = position
        self.commits += 1

    async def position(self, watcher: str, path: str) -> TailPosition | None:
        """The last position committed for ``(watcher, path)``."""
        return self.positions.get((watcher, path))

    def indicators(self) -> list[Indicator]:
        """Every indicator sighted, merged per id (as the store would), in first-seen order."""
        merged: dict[str, Indicator] = {}
        for sighting in self.sightings:
            known = merged.get(sighting.indicator.id)
            merged[sighting.indicator.id] = (
                sighting.indicator if known is None else merge(known, sighting.indicator)
            )
        return sorted(merged.values(), key=lambda item: (item.first_seen, item.type, item.value))


@dataclass(slots=True)
class Observation:
    """One understood log line.

    Attributes:
        pattern: which of the parser's line patterns matched (``ufw-block`` ...).
        time: the log's own timestamp, seconds since the epoch (UTC).
        line: the raw line, kept for evidence.
    """

    pattern: str
    time: float
    line: str


class LineParser(Protocol):
    """Reads one line; returns None for lines that carry nothing to detect."""

    def parse(self, line: str) -> Observation | None:
        """Understand one line (without its newline).

        Raises:
            ParseError: the line is malformed, truncated, binary or not this source's format.
        """
        ...


class Watcher(Protocol):
    """A configured parser + detector for one source."""

    name: str

    def parser_for(self, path: str) -> LineParser:
        """The parser for one file (per-file state such as Zeek TSV headers lives in it)."""
        ...

    def detect(self, observation: Observation) -> Sequence[Sighting]:
        """Fold one observation into the detector; return the sightings it completes.

        Raises:
            ParseError: the observation holds a value that is not a valid indicator.
        """
        ...

    def flush(self) -> Sequence[Sighting]:
        """End of input (``dtim ingest``): return anything still pending."""
        ...


@dataclass(slots=True)
class Screened:
    """A batch of lines after a watcher's quiet-line screen.

    Attributes:
        noisy: positions of the lines still to parse and detect, in order.
        quiet: per pattern, how many lines are certainly quiet: well-formed, counted by
            no rule, so parsing and detecting them would change nothing.
    """

    noisy: list[int]
    quiet: dict[str, int]


@runtime_checkable
class QuietScreen(Protocol):
    """Optional for a watcher: spares the bulk of benign traffic its parse and detect."""

    def screen(self, lines: Sequence[str]) -> Screened:
        """Sort a batch into quiet lines (counted per pattern) and lines to process.

        A line may only be called quiet when parsing it gives that pattern, detecting it
        returns nothing and changes no state; anything unsure goes to ``noisy``.
        """
        ...


class InputKind(StrEnum):
    """What a watcher reads: one file, a directory of log files, or files to scan."""

    FILE = "file"
    DIRECTORY = "directory"
    SCAN = "scan"


@dataclass(frozen=True, slots=True)
class WatcherContext:
    """Everything a watcher needs from the node, as plain values (no Settings object).

    Attributes:
        settings: the ``[watchers.<name>]`` table (rule overrides and options).
        own_networks: the node's own address ranges; sightings of them stay local.
        own_domains: the node's own domains; sightings of them stay local.
        clock: wall clock; its ``now`` is the reference for year-less syslog dates.
        timezone: zone of log timestamps that carry none; None means the machine's local zone.
        max_tracked: upper bound of keys (addresses, flows) each detector keeps in memory.
    """

    settings: SettingsMapping = field(default_factory=dict)
    own_networks: tuple[IPNetwork, ...] = ()
    own_domains: tuple[str, ...] = ()
    clock: Clock = field(default_factory=SystemClock)
    timezone: tzinfo | None = None
    max_tracked: int = 1_000_000


@dataclass(frozen=True, slots=True)
class WatcherSpec:
    """A watcher as plugins register it: name, defaults and a factory.

    Attributes:
        name: the source name used in config and CLI (``nginx_access``).
        summary: one line for ``dtim plugins``.
        input: what the watcher reads.
        rules: the detection rules with their default thresholds.
        patterns: names of the line patterns the parser knows.
        options: watcher-level settings (besides rule overrides) with their help text.
        create: builds a watcher from a context; raises ConfigError on bad settings.
    """

    name: str
    summary: str
    input: InputKind
    rules: tuple[Rule, ...]
    patterns: tuple[str, ...]
    create: Callable[[WatcherContext], Watcher]
    options: Mapping[str, str] = field(default_factory=dict)


def parse_networks(
    values: Sequence[str], key: str = "privacy.own_networks"
) -> tuple[IPNetwork, ...]:
    """Read CIDR strings into networks.

    Raises:
        ConfigError: naming ``key`` and the value that is not a network.
    """
    networks: list[IPNetwork] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{value!r} is not an address range (CIDR)", key=key) from None
    return tuple(networks)
