"""The gossip tables (received items, pinned CAs, peer contact, purges) on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dtim.model import Peer, PeerId, PeerStatus, make_indicator
from dtim.store import Store
from dtim.store.gossip import GossipStore, StoredItem

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def item(n: int, *, expires: int = 2_000_000_000) -> StoredItem:
    return StoredItem(
        item_id=n.to_bytes(32, "big"),
        stamp=1_700_000_000 + n,
        indicator_id=f"00000000-0000-0000-0000-{n:012d}",
        expires=expires,
        relay=n % 2 == 0,
        received_from="peer",
        received_at=1.5,
        body=b'{"n": %d}' % n,
    )


async def test_items_are_added_once_loaded_and_purged(store: Store) -> None:
    items = GossipStore(store)
    assert await items.add_items([item(1), item(2), item(2)]) == 2
    assert await items.add_items([item(2), item(3, expires=100)]) == 1
    loaded = await items.load_items(now=1000)
    assert [i.item_id for i in loaded] == [item(1).item_id, item(2).item_id]
    assert loaded[1] == item(2)
    assert await items.purge_items(now=1000) == 1
    assert await items.count_items() == 2


async def test_pins_and_contact_never_touch_the_status(store: Store) -> None:
    items = GossipStore(store)
    peer = Peer(PeerId("p" * 64), "https://p:1", "KEY", "SHA256:x", PeerStatus.APPROVED, NOW)
    await store.save_peer(peer)
    await items.pin_peer_ca(peer.id, "PEM-1", now=NOW)
    await items.pin_peer_ca(peer.id, "PEM-2", now=NOW)
    assert await items.pinned_cas() == {peer.id: "PEM-2"}
    await store.set_peer_status(peer.id, PeerStatus.REVOKED)  # the CLI, meanwhile
    await items.touch_peer(peer.id, last_contact=NOW, score=1.5)
    stored = await store.get_peer(peer.id)
    assert stored is not None
    assert stored.status is PeerStatus.REVOKED
    assert (stored.score, stored.last_contact) == (1.5, NOW)


async def test_public_page_and_indicator_purge(store: Store) -> None:
    items = GossipStore(store)
    old = NOW - timedelta(days=40)
    await store.upsert_indicators(
        [
            make_indicator("45.155.0.1", now=old, tlp="clear"),
            make_indicator("45.155.0.2", now=NOW, tlp="clear"),
            make_indicator("45.155.0.3", now=NOW, tlp="green"),
            make_indicator("bad.example.com", now=old),
        ]
    )
    page = await items.public_page(0, 10)
    assert [i.value for _, i in page] == ["45.155.0.1", "45.155.0.2"]
    assert await items.public_page(page[-1][0], 10) == []
    cutoff = (NOW - timedelta(days=30)).timestamp()
    gone = await items.purge_indicators(
        {"ipv4": cutoff}, fallback=(NOW - timedelta(days=180)).timestamp()
    )
    assert len(gone) == 1  # the old address; the domain lives 180 days
    assert {i.value for i in await store.list_indicators()} == {
        "45.155.0.2",
        "45.155.0.3",
        "bad.example.com",
    }
