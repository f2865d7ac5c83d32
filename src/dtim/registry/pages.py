"""Served list pages, reused for a moment: the hot path of a busy registry.

Thousands of nodes walking the same list ask for the same pages. Each page is
one indexed query (:mod:`dtim.registry.records`); this cache lets a replica
answer repeated requests for a page from memory for ``ttl`` seconds and runs at
most one query per page at a time (concurrent requests for a missing page wait
for the same query; while an expired page is being refreshed, the others get
the expired copy rather than queueing behind the query). Lists are therefore at
most ``ttl`` seconds, plus one query, behind the database, on every replica
alike. Writes do not clear it: with thousands of nodes refreshing, a cache
cleared on every write would never be used. Pages are joined and compressed in
a worker thread, so building one never stalls the requests being answered.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from dtim.registry.records import Page

DEFAULT_MAX_PAGES = 4096
GZIP_LEVEL = 1
"""Base64 keys and signatures barely compress further at higher levels; level 1 is cheapest."""
MIN_GZIP_BYTES = 1400
"""Bodies that fit one packet are sent as they are."""


class ServedPage:
    """A page as sent: the JSON array, where to continue, and its gzip form once asked for."""

    __slots__ = ("_gzipped", "body", "full", "next_since")

    def __init__(self, body: bytes, next_since: int, full: bool) -> None:
        self.body = body
        self.next_since = next_since
        self.full = full
        self._gzipped: bytes | None = None

    @classmethod
    def of(cls, page: Page) -> ServedPage:
        """Join the stored items into one JSON array."""
        body = b"[" + ",".join(page.documents).encode("utf-8") + b"]"
        return cls(body, page.next_since, page.full)

    @classmethod
    def prepared(cls, page: Page) -> ServedPage:
        """Joined, and compressed when it is large enough to be sent compressed."""
        served = cls.of(page)
        if len(served.body) >= MIN_GZIP_BYTES:
            served.gzipped()
        return served

    def gzipped(self) -> bytes:
        """The body gzip-compressed (about a third of the size), computed once per page."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=GZIP_LEVEL, mtime=0)
        return self._gzipped


PageKey = tuple[str, int, int]
"""(list name, since, limit)."""


class PageCache:
    """Recently served pages, per process.

    Args:
        ttl: seconds a page is reused; 0 disables the cache.
        max_pages: bound on the pages kept (least recently used go first).
        monotonic: time source.
    """

    def __init__(
        self,
        ttl: float,
        *,
        max_pages: int = DEFAULT_MAX_PAGES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._max = max_pages
        self._monotonic = monotonic
        self._pages: OrderedDict[PageKey, tuple[float, ServedPage]] = OrderedDict()
        self._pending: dict[PageKey, asyncio.Future[ServedPage]] = {}
        self._generation = 0

    def __len__(self) -> int:
        return len(self._pages)

    @property
    def reuses(self) -> bool:
        """Whether pages are kept (only then is compressing them worth it)."""
        return self.ttl > 0

    def clear(self) -> None:
        """Forget every page."""
        self._pages.clear()
        self._generation += 1

    async def get(self, key: PageKey, load: Callable[[], Awaitable[Page]]) -> ServedPage:
        """The page for ``key``: from memory if fresh, else from ``load`` (one call at a time)."""
        if self.ttl <= 0:
            return ServedPage.of(await load())
        now = self._monotonic()
        cached = self._pages.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            self._pages.move_to_end(key)
            return cached[1]
        pending = self._pending.get(key)
        if pending is not None:
            if cached is not None:
                return cached[1]  # being refreshed: the expired copy, without waiting
            return await asyncio.shield(pending)
        future: asyncio.Future[ServedPage] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        generation = self._generation
        try:
            page = await asyncio.to_thread(ServedPage.prepared, await load())
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved here: nobody waiting is not an error
            raise
        finally:
            del self._pending[key]
        future.set_result(page)
        if generation == self._generation:  # not if clear() ran during the query
            self._pages[key] = (now, page)
            self._pages.move_to_end(key)
            while len(self._pages) > self._max:
                self._pages.popitem(last=False)
        return page
