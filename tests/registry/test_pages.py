"""The list page cache: reuse within the TTL, one query per page at a time, bounded."""

from __future__ import annotations

import asyncio
import gzip

import orjson
import pytest

from dtim.errors import StoreError
from dtim.registry.pages import PageCache, ServedPage
from dtim.registry.records import Page


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts queries; ``gate`` holds them until the test lets them finish."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()

    async def __call__(self) -> Page:
        self.calls += 1
        self.started.set()
        await self.gate.wait()
        return Page((f'{{"n":{self.calls}}}',), next_since=self.calls, full=False)


async def test_pages_are_reused_within_the_ttl_only() -> None:
    clock, load = Clock(), Loader()
    cache = PageCache(1.0, monotonic=clock)
    first = await cache.get(("peers", 0, 500), load)
    assert first.body == b'[{"n":1}]'
    assert (await cache.get(("peers", 0, 500), load)) is first
    assert (await cache.get(("peers", 0, 100), load)).next_since == 2  # another key
    clock.now += 1.0
    assert (await cache.get(("peers", 0, 500), load)).body == b'[{"n":3}]'
    cache.clear()
    assert len(cache) == 0
    assert load.calls == 3


async def test_concurrent_requests_share_one_query() -> None:
    load = Loader()
    load.gate.clear()
    cache = PageCache(1.0)
    waiting = [asyncio.ensure_future(cache.get(("peers", 0, 500), load)) for _ in range(20)]
    await asyncio.sleep(0)
    load.gate.set()
    pages = await asyncio.gather(*waiting)
    assert load.calls == 1
    assert all(page is pages[0] for page in pages)


async def test_while_an_expired_page_refreshes_the_others_get_the_old_copy() -> None:
    clock, load = Clock(), Loader()
    cache = PageCache(1.0, monotonic=clock)
    old = await cache.get(("peers", 0, 500), load)
    clock.now += 1.0
    load.gate.clear()
    load.started.clear()
    refreshing = asyncio.ensure_future(cache.get(("peers", 0, 500), load))
    await load.started.wait()  # the refresh has started its query
    async with asyncio.timeout(5):  # answered without waiting for the refresh
        assert (await cache.get(("peers", 0, 500), load)) is old
    load.gate.set()
    fresh = await refreshing
    assert fresh.body == b'[{"n":2}]'
    assert (await cache.get(("peers", 0, 500), load)) is fresh
    assert load.calls == 2


async def test_a_failed_query_reaches_every_waiter_and_is_not_kept() -> None:
    calls = 0

    async def broken() -> Page:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise StoreError("database is down")

    cache = PageCache(1.0)
    results = await asyncio.gather(
        *(cache.get(("peers", 0, 500), broken) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, StoreError) for r in results)
    assert calls == 1
    with pytest.raises(StoreError):
        await cache.get(("peers", 0, 500), broken)
    assert calls == 2


async def test_the_cache_is_bounded_and_can_be_off() -> None:
    load = Loader()
    cache = PageCache(60.0, max_pages=3)
    for since in range(10):
        await cache.get(("peers", since, 500), load)
    assert len(cache) == 3
    off = PageCache(0)
    await off.get(("peers", 0, 500), load)
    await off.get(("peers", 0, 500), load)
    assert load.calls == 12
    assert len(off) == 0
    assert not off.reuses


def test_a_page_compresses_once() -> None:
    page = ServedPage.of(
        Page(tuple(orjson.dumps({"i": i}).decode() for i in range(500)), 500, True)
    )
    squeezed = page.gzipped()
    assert page.gzipped() is squeezed
    assert orjson.loads(gzip.decompress(squeezed)) == [{"i": i} for i in range(500)]
    assert len(squeezed) < len(page.body) / 3
