"""Publishing own indicators ends even while watchers keep committing, and loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dtim.model import indicator_id
from dtim.store import Store
from tests.gossip.localnode import indicator, local_nodes, public_ips


class ChurningStore:
    """The node's real store, with a watcher committing one new indicator before every read
    of changes: the newest change is never the one just read."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.written: list[str] = []

    async def changed_since(self, seq: int, limit: int = 1000) -> Any:
        value = public_ips(1, start=len(self.written))[0]
        await self._store.upsert_indicators([indicator(value)])
        self.written.append(value)
        return await self._store.changed_since(seq, limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_publish_returns_while_changes_keep_coming_and_a_later_call_gets_the_rest(
    tmp_path: Path,
) -> None:
    async with local_nodes(tmp_path, ["a"]) as (a,):
        loop = a.runtime.loop
        await a.add(indicator(public_ips(1, start=100_000)[0]))
        churning = ChurningStore(a.store)
        loop.store = churning  # type: ignore[assignment]  # the real store, written meanwhile
        # Before the fix, publish read until a read came back empty: never, here.
        first = await asyncio.wait_for(loop.publish(), 10)
        assert first >= 1
        loop.store = a.store
        await loop.publish()
        for value in churning.written:
            assert loop.index.local(indicator_id("ipv4", value)) is not None, value
