"""A delivery's items and the indicator they merge into are written together or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from dtim.errors import StoreError
from dtim.gossip.corroboration import NewReportQuota
from dtim.gossip.inbox import Inbox
from dtim.gossip.report import Report, item_id
from dtim.model import FakeClock, PeerId, Tlp
from dtim.store import Store
from dtim.store.gossip import GossipStore
from tests.gossip.test_verdicts import ISSUER, PEER, VALUE, index, own


def _reports(clock: FakeClock) -> list[Report]:
    bucket = int(clock.now().timestamp()) // 3600 * 3600
    return [
        Report(
            indicator=own(clock).id,
            type="ipv4",
            value=VALUE,
            tlp=Tlp.GREEN,
            recipients=(),
            bucket=bucket,
            confidence=90,
            tags=(),
            reporter=reporter * 32,
            expires=bucket + 86400 * 30,
        )
        for reporter in ("a", "b")
    ]


def _failing_indicator_writes(store: Store, fail: bool) -> None:
    """A trigger that aborts every write to the indicators table (a disk that fills up
    between the two writes of a delivery)."""
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS dtim_test_fail"))
        if fail:
            conn.execute(
                text(
                    "CREATE TRIGGER dtim_test_fail BEFORE INSERT ON indicators "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )


async def test_a_failed_indicator_write_keeps_none_of_the_delivery(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:  # the trigger is SQLite's
        await _delivery_is_all_or_nothing(store, clock)


async def _delivery_is_all_or_nothing(store: Store, clock: FakeClock) -> None:
    held = index()
    items = GossipStore(store)
    inbox = Inbox(held, store, items, node_id=ISSUER.node_id, quota=NewReportQuota(), clock=clock)
    reports = _reports(clock)
    _failing_indicator_writes(store, True)
    with pytest.raises(StoreError):
        await inbox.accept(PeerId(PEER.node_id), reports, via="pull")
    assert await items.load_items(int(clock.now().timestamp())) == []
    assert not any(held.known(item_id(report)) for report in reports)

    # Offered again (reconciliation finds them missing), they are taken whole.
    _failing_indicator_writes(store, False)
    receipt = await inbox.accept(PeerId(PEER.node_id), reports, via="pull")
    assert receipt.received == 2
    assert len(await items.load_items(int(clock.now().timestamp()))) == 2
    stored = await store.get_indicator(own(clock).id)
    assert stored is not None
    assert stored.sightings == 2
