"""VirusTotal enrichment of what the node's watchers detect.

:class:`EnrichingSink` sits between the watchers and the store. A sighting
whose value VirusTotal already answered for gets its confidence adjusted
before it is committed; a value not looked up yet is queued (file hashes
first: they are few and VirusTotal knows them best) and a background worker
looks it up within the API's rate and then adjusts the stored indicator. A
watcher never waits for VirusTotal. Answers are cached in the store's state
(:class:`StateVtCache`) so a restart does not spend the API budget again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from dtim.errors import WatcherError
from dtim.model import Indicator, JsonValue, Sighting, TailPosition
from dtim.watchers.base import SightingSink
from dtim.watchers.virustotal import ENRICHED_TYPES, VirusTotalEnricher, VtAnswer, adjust

log = logging.getLogger("dtim.watchers.virustotal")

CACHE_PREFIX = "virustotal:"
CACHE_SECONDS = 7 * 24 * 3600.0
"""Answers older than this are looked up again (verdicts change as engines learn)."""
QUEUE_LIMIT = 10_000
_HASHES = frozenset({"md5", "sha1", "sha256"})
_COUNTS = ("malicious", "suspicious", "harmless", "undetected")


class StateStore(Protocol):
    """The part of :class:`dtim.store.Store` the cache and worker use."""

    async def get_state(self, key: str) -> JsonValue:
        """The value under ``key`` (None when absent)."""
        ...

    async def set_state(self, key: str, value: JsonValue) -> None:
        """Keep ``value`` under ``key``."""
        ...

    async def find_indicator(self, type_: str, value: str) -> Indicator | None:
        """One stored indicator by type and value."""
        ...

    async def replace_indicator(self, indicator: Indicator) -> None:
        """Store ``indicator`` as given."""
        ...


class StateVtCache:
    """VirusTotal answers kept in the store's state, each with the time it was fetched."""

    def __init__(self, store: StateStore, *, max_age: float = CACHE_SECONDS) -> None:
        self.store = store
        self.max_age = max_age

    async def get(self, key: str) -> VtAnswer | None:
        """The answer for ``type:value`` if fetched less than ``max_age`` ago."""
        raw = await self.store.get_state(CACHE_PREFIX + key)
        if not isinstance(raw, dict):
            return None
        fetched = raw.get("fetched")
        if not isinstance(fetched, int | float) or time.time() - fetched > self.max_age:
            return None
        counts = [
            raw.get(name, 0) for name in ("malicious", "suspicious", "harmless", "undetected")
        ]
        if not all(isinstance(count, int) for count in counts):
            return None
        return VtAnswer(bool(raw.get("found")), *(int(str(count)) for count in counts))

    async def put(self, key: str, answer: VtAnswer) -> None:
        """Remember ``answer`` with the time it was fetched."""
        await self.store.set_state(
            CACHE_PREFIX + key,
            {
                "found": answer.found,
                "malicious": answer.malicious,
                "suspicious": answer.suspicious,
                "harmless": answer.harmless,
                "undetected": answer.undetected,
                "fetched": time.time(),
            },
        )


class EnrichingSink:
    """A sink that adjusts sightings with VirusTotal's cached verdicts and queues the rest.

    Args:
        inner: the sink that commits (the store).
        enricher: the VirusTotal client, whose cache should be a :class:`StateVtCache`.
        store: where queued lookups adjust the indicator afterwards.
    """

    def __init__(
        self,
        inner: SightingSink,
        enricher: VirusTotalEnricher,
        store: StateStore,
        *,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.inner = inner
        self.enricher = enricher
        self.store = store
        self.queue: asyncio.PriorityQueue[tuple[int, int, str, str]] = asyncio.PriorityQueue(
            queue_limit
        )
        self._queued: set[tuple[str, str]] = set()
        self._order = itertools.count()
        self.enriched = 0
        self.dropped = 0
        self.failures = 0

    async def commit(
        self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]
    ) -> None:
        """Adjust what the cache already knows, queue the rest, commit everything."""
        adjusted: list[Sighting] = []
        for sighting in sightings:
            indicator = sighting.indicator
            if indicator.type not in ENRICHED_TYPES:
                adjusted.append(sighting)
                continue
            answer = await self.enricher.cache.get(f"{indicator.type}:{indicator.value}")
            if answer is None:
                self._enqueue(indicator)
                adjusted.append(sighting)
            else:
                adjusted.append(replace(sighting, indicator=adjust(indicator, answer)))
        await self.inner.commit(adjusted, positions)

    async def position(self, watcher: str, path: str) -> TailPosition | None:
        """Forward."""
        return await self.inner.position(watcher, path)

    def _enqueue(self, indicator: Indicator) -> None:
        key = (indicator.type, indicator.value)
        if key in self._queued:
            return
        priority = 0 if indicator.type in _HASHES else 1
        try:
            self.queue.put_nowait((priority, next(self._order), *key))
        except asyncio.QueueFull:
            self.dropped += 1  # looked up when it is sighted again
            return
        self._queued.add(key)

    async def run(self, stop: asyncio.Event) -> None:
        """Look queued values up one by one and adjust the stored indicators, until ``stop``."""
        while not stop.is_set():
            getter = asyncio.ensure_future(self.queue.get())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                stopper.cancel()
                return
            stopper.cancel()
            _, _, type_, value = getter.result()
            self._queued.discard((type_, value))
            await self.enrich_stored(type_, value)

    async def enrich_stored(self, type_: str, value: str) -> None:
        """Look one value up and adjust its stored indicator (a failure is logged, not raised)."""
        try:
            answer = await self.enricher.lookup(type_, value)
        except WatcherError as exc:
            self.failures += 1
            log.warning("VirusTotal lookup of a %s failed: %s", type_, exc)
            return
        if answer is None:
            return
        stored = await self.store.find_indicator(type_, value)
        if stored is None:
            return
        updated = adjust(stored, answer)
        if updated != stored:
            await self.store.replace_indicator(updated)
            self.enriched += 1
