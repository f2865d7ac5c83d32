"""Received reports stored without their indicator (a crash between the two writes) are
written at the next start."""

from __future__ import annotations

import orjson

from dtim.gossip.corroboration import NewReportQuota
from dtim.gossip.inbox import Inbox
from dtim.gossip.protocol import decode_item
from dtim.gossip.report import Report
from dtim.gossip.views import ItemIndex
from dtim.model import FakeClock, PeerId, Tlp
from dtim.store import Store
from dtim.store.gossip import GossipStore
from tests.gossip.test_verdicts import ISSUER, PEER, VALUE, index, own


def _inbox(held: ItemIndex, store: Store, clock: FakeClock) -> Inbox:
    return Inbox(
        held, store, GossipStore(store), node_id=ISSUER.node_id, quota=NewReportQuota(), clock=clock
    )


async def _restarted(store: Store, clock: FakeClock) -> Inbox:
    """A new index loaded from the stored items, as a restarted node builds it."""
    held = index()
    for stored in await GossipStore(store).load_items(int(clock.now().timestamp())):
        item = decode_item(orjson.loads(stored.body))
        held.add_received(stored.item_id, item, relay=stored.relay, subject=None)  # type: ignore[arg-type]  # stored ids are item ids
    return _inbox(held, store, clock)


async def test_items_stored_without_their_indicator_are_written_at_start(
    store: Store, clock: FakeClock
) -> None:
    bucket = int(clock.now().timestamp()) // 3600 * 3600
    reports = [
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
    first = _inbox(index(), store, clock)
    assert (await first.accept(PeerId(PEER.node_id), reports, via="pull")).received == 2
    written = await store.get_indicator(own(clock).id)
    assert written is not None
    # The process dies after the items' write and before the indicator's.
    assert await store.delete_indicator(own(clock).id)

    restarted = await _restarted(store, clock)
    assert await restarted.repair() == 1
    repaired = await store.get_indicator(own(clock).id)
    assert repaired is not None
    assert repaired.value == VALUE
    assert repaired.confidence == written.confidence
    assert repaired.sightings == 2
    assert await restarted.repair() == 0
