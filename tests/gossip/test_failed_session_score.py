"""A failed session stores the peer's lowered score: a peer that only fails must not keep
its last good score in ``dtim peers list`` and the dashboard."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dtim.config import Settings
from dtim.model import PeerId
from tests.gossip.localnode import local_nodes
from tests.gossip.test_sync import blackhole


async def test_a_failed_session_lowers_the_stored_score(tmp_path: Path) -> None:
    quick = Settings()
    quick = replace(quick, network=replace(quick.network, request_timeout_seconds=0.5))
    async with local_nodes(tmp_path, ["a", "dead"], settings=quick) as (a, dead):
        async with blackhole() as url:
            await a.approve(dead)
            await a.store.save_peer(replace(dead.as_peer(), endpoint=url))
            await a.runtime.directory.refresh(force=True)
            before = await a.store.get_peer(dead.id)
            assert before is not None
            chosen = await a.runtime.loop.round()
            assert [p.id for p in chosen] == [dead.id]
            await a.runtime.loop.settle()
        after = await a.store.get_peer(dead.id)
        assert after is not None
        assert after.score < before.score
        reputation = a.runtime.loop.reputation
        assert reputation is not None
        # The score decays with time: compare to a moment later.
        assert after.score == pytest.approx(reputation.score(PeerId(dead.id)), abs=0.01)
