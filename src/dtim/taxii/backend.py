"""What the TAXII server needs from the rest of the node, as Protocols, plus an in-memory feed.

:class:`IndicatorFeed` is the indicator side (keyset pages in change order,
one lookup, one atomic ingest); :class:`Sharer` is the privacy side (the JSON
form of what may leave for one account, or None). The node wires the store
and ``dtim.privacy`` behind them (:mod:`dtim.taxii.wiring`); tests and the
benchmark use :class:`MemoryFeed`.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dtim.model import Indicator, Tlp, merge
from dtim.model.clock import Clock
from dtim.taxii.accounts import Account


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One indicator as the feed holds it: change number, when this version was added, value."""

    seq: int
    date_added: datetime
    indicator: Indicator


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """Which records a page may contain; None means no restriction."""

    tlps: frozenset[Tlp]
    ids: frozenset[str] | None = None
    types: frozenset[str] | None = None
    added_after: datetime | None = None
    min_confidence: int | None = None

    def accepts(self, record: FeedRecord) -> bool:
        """True when ``record`` passes every restriction."""
        indicator = record.indicator
        if indicator.tlp not in self.tlps:
            return False
        if self.ids is not None and indicator.id not in self.ids:
            return False
        if self.types is not None and indicator.type not in self.types:
            return False
        if self.added_after is not None and record.date_added <= self.added_after:
            return False
        return self.min_confidence is None or indicator.confidence >= self.min_confidence


@dataclass(frozen=True, slots=True)
class FeedPage:
    """Records after a change number, and how far the scan got.

    ``scanned_to`` is the change number the next page starts after, even when
    records past the last returned one were filtered out; ``more`` is False
    only when nothing after ``scanned_to`` exists.
    """

    records: list[FeedRecord]
    scanned_to: int
    more: bool


class IndicatorFeed(Protocol):
    """Indicators in change order, for TAXII and exports."""

    async def page(self, after_seq: int, limit: int, where: FeedFilter) -> FeedPage:
        """Up to ``limit`` records with ``seq > after_seq`` accepted by ``where``, by ``seq``."""
        ...

    async def get(self, indicator_id: str) -> FeedRecord | None:
        """The current record of one indicator."""
        ...

    async def ingest(self, indicators: Sequence[Indicator]) -> int:
        """Merge indicators in, all or nothing; returns how many distinct ones were written.

        Raises:
            StoreError: nothing was written.
        """
        ...


class Sharer(Protocol):
    """The privacy filter, seen from TAXII and exports."""

    def share(self, indicator: Indicator, account: Account) -> Mapping[str, object] | None:
        """The JSON form of what may leave for ``account``, or None when nothing may."""
        ...


class MemoryFeed:
    """An :class:`IndicatorFeed` in memory: for tests, benchmarks and small tools."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._current: dict[str, FeedRecord] = {}
        self._seqs: list[int] = []
        self._by_seq: list[FeedRecord] = []
        self._last = 0

    def __len__(self) -> int:
        return len(self._current)

    def add(self, indicators: Sequence[Indicator], *, date_added: datetime | None = None) -> None:
        """Merge indicators in synchronously (fixtures and benchmarks)."""
        when = date_added or self._clock.now()
        for indicator in indicators:
            seen = self._current.get(indicator.id)
            merged = indicator if seen is None else merge(seen.indicator, indicator)
            self._last += 1
            record = FeedRecord(self._last, when, merged)
            self._current[merged.id] = record
            self._seqs.append(record.seq)
            self._by_seq.append(record)

    async def page(self, after_seq: int, limit: int, where: FeedFilter) -> FeedPage:
        """See :meth:`IndicatorFeed.page`."""
        out: list[FeedRecord] = []
        position = bisect.bisect_right(self._seqs, after_seq)
        scanned = after_seq
        while position < len(self._by_seq) and len(out) < limit:
            record = self._by_seq[position]
            position += 1
            scanned = record.seq
            # Superseded versions stay in the log; only the current one is served.
            if self._current[record.indicator.id] is record and where.accepts(record):
                out.append(record)
        return FeedPage(out, scanned, position < len(self._by_seq))

    async def get(self, indicator_id: str) -> FeedRecord | None:
        """See :meth:`IndicatorFeed.get`."""
        return self._current.get(indicator_id)

    async def ingest(self, indicators: Sequence[Indicator]) -> int:
        """See :meth:`IndicatorFeed.ingest`."""
        self.add(indicators)
        return len({i.id for i in indicators})
