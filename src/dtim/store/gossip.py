"""Persistence for the gossip layer: received items, pinned peer CAs, peer contact, purges.

Kept apart from :mod:`dtim.store.queries` so the gossip layer's tables live in
one place. :class:`GossipStore` wraps a connected :class:`~dtim.store.Store`
and runs each operation the same way (one worker-thread hop per operation).

* ``gossip_items``: every report and tombstone received from peers, as its
  canonical bytes, with what the node decided about it (may it be relayed)
  and which peer delivered it (local knowledge only; it never leaves). The
  node's own reports are not stored: they are derived from its indicators.
* ``peer_pins``: the CA certificate pinned for each peer when it was added or
  approved (mTLS trusts exactly the approved peers' pins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    and_,
    delete,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from dtim.model import Indicator
from dtim.store.queries import Store
from dtim.store.rows import indicator_from_row
from dtim.store.tables import indicators, metadata, peers, sightings

gossip_items = Table(
    "gossip_items",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("item_id", LargeBinary(32), nullable=False),
    Column("stamp", BigInteger, nullable=False),
    Column("indicator_id", String(36), nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("relay", Boolean, nullable=False),
    Column("received_from", String(64), nullable=True),
    Column("received_at", Float, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("ix_gossip_items_item_id", "item_id", unique=True),
    Index("ix_gossip_items_expires", "expires"),
    Index("ix_gossip_items_indicator", "indicator_id"),
)

peer_pins = Table(
    "peer_pins",
    metadata,
    Column("peer_id", String(64), primary_key=True),
    Column("ca_pem", Text, nullable=False),
    Column("pinned_at", Float, nullable=False),
)

_PURGE_BATCH = 500


def _item_row(item: StoredItem) -> dict[str, object]:
    return {
        "item_id": item.item_id,
        "stamp": item.stamp,
        "indicator_id": item.indicator_id,
        "expires": item.expires,
        "relay": item.relay,
        "received_from": item.received_from,
        "received_at": item.received_at,
        "body": item.body,
    }


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One received gossip item as stored.

    Attributes:
        item_id: SHA-256 of the canonical bytes.
        stamp: the item's sort timestamp (report bucket or tombstone issue time).
        indicator_id: the indicator the item is about.
        expires: Unix second from which the item is dead everywhere.
        relay: whether this node may pass the item on (never for AMBER/RED).
        received_from: the peer that delivered it (local knowledge only).
        received_at: when it arrived (Unix seconds).
        body: the canonical JSON bytes.
    """

    item_id: bytes
    stamp: int
    indicator_id: str
    expires: int
    relay: bool
    received_from: str | None
    received_at: float
    body: bytes


def _stored(row: RowMapping) -> StoredItem:
    return StoredItem(
        item_id=bytes(row["item_id"]),
        stamp=row["stamp"],
        indicator_id=row["indicator_id"],
        expires=row["expires"],
        relay=bool(row["relay"]),
        received_from=row["received_from"],
        received_at=row["received_at"],
        body=bytes(row["body"]),
    )


class GossipStore:
    """Gossip tables over a connected :class:`~dtim.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add_items(
        self, items: Sequence[StoredItem], indicators: Sequence[Indicator] = ()
    ) -> int:
        """Insert items, skipping ids already stored, and merge ``indicators`` (what the items
        make of them) in the same transaction; returns how many items were new."""
        if not items and not indicators:
            return 0
        unique = {item.item_id: item for item in items}

        def work() -> int:
            with self.store._write() as conn:
                ids = list(unique)
                known: set[bytes] = set()
                for start in range(0, len(ids), _PURGE_BATCH):
                    chunk = ids[start : start + _PURGE_BATCH]
                    found = conn.execute(
                        select(gossip_items.c.item_id).where(gossip_items.c.item_id.in_(chunk))
                    )
                    known.update(bytes(row[0]) for row in found)
                rows = [_item_row(item) for key, item in unique.items() if key not in known]
                if rows:
                    conn.execute(gossip_items.insert(), rows)
                if indicators:
                    self.store._merge_into(conn, indicators)
                return len(rows)

        return await self.store._run(work)

    async def load_items(self, now: int) -> list[StoredItem]:
        """Every stored item that is still alive at ``now`` (Unix seconds), oldest first."""
        stmt = select(gossip_items).where(gossip_items.c.expires > now).order_by(gossip_items.c.seq)

        def work() -> list[StoredItem]:
            with self.store._read() as conn:
                return [_stored(row) for row in conn.execute(stmt).mappings()]

        return await self.store._run(work)

    async def items_for(self, indicator_ids: Sequence[str], now: int) -> list[StoredItem]:
        """Stored items about these indicators still alive at ``now``, oldest first."""
        wanted = sorted(set(indicator_ids))
        if not wanted:
            return []

        def work() -> list[StoredItem]:
            found: list[StoredItem] = []
            with self.store._read() as conn:
                for start in range(0, len(wanted), _PURGE_BATCH):
                    stmt = (
                        select(gossip_items)
                        .where(
                            and_(
                                gossip_items.c.indicator_id.in_(
                                    wanted[start : start + _PURGE_BATCH]
                                ),
                                gossip_items.c.expires > now,
                            )
                        )
                        .order_by(gossip_items.c.seq)
                    )
                    found += [_stored(row) for row in conn.execute(stmt).mappings()]
            return found

        return await self.store._run(work)

    async def purge_items(self, now: int) -> int:
        """Delete items dead at ``now``; returns how many."""

        def work() -> int:
            with self.store._write() as conn:
                return int(
                    conn.execute(delete(gossip_items).where(gossip_items.c.expires <= now)).rowcount
                )

        return await self.store._run(work)

    async def count_items(self) -> int:
        """How many items are stored."""

        def work() -> int:
            with self.store._read() as conn:
                return len(conn.execute(select(gossip_items.c.seq)).all())

        return await self.store._run(work)

    # -- peers -------------------------------------------------------------------

    async def pin_peer_ca(self, peer_id: str, ca_pem: str, *, now: datetime) -> None:
        """Pin (or re-pin) the CA certificate of a peer."""
        dialect_insert = postgresql.insert if self.store.dialect == "postgresql" else sqlite.insert
        stmt = dialect_insert(peer_pins)
        stmt = stmt.on_conflict_do_update(
            index_elements=["peer_id"],
            set_={"ca_pem": stmt.excluded.ca_pem, "pinned_at": stmt.excluded.pinned_at},
        )
        row = {"peer_id": peer_id, "ca_pem": ca_pem, "pinned_at": now.timestamp()}

        def work() -> None:
            with self.store._write() as conn:
                conn.execute(stmt, [row])

        await self.store._run(work)

    async def pinned_cas(self) -> dict[str, str]:
        """Peer id to pinned CA PEM, for every peer that has one."""

        def work() -> dict[str, str]:
            with self.store._read() as conn:
                return {
                    r[0]: r[1]
                    for r in conn.execute(select(peer_pins.c.peer_id, peer_pins.c.ca_pem))
                }

        return await self.store._run(work)

    async def touch_peer(
        self, peer_id: str, *, last_contact: datetime | None = None, score: float | None = None
    ) -> None:
        """Update a peer's last contact and/or score without touching its status.

        A running node must never rewrite a whole peer row: the CLI may have
        revoked the peer in the meantime, and a stale write would undo that.
        """
        values: dict[str, float] = {}
        if last_contact is not None:
            values["last_contact"] = last_contact.timestamp()
        if score is not None:
            values["score"] = score
        if not values:
            return

        def work() -> None:
            with self.store._write() as conn:
                conn.execute(update(peers).where(peers.c.id == peer_id).values(**values))

        await self.store._run(work)

    # -- indicators ----------------------------------------------------------------

    async def public_page(self, after_seq: int, limit: int) -> list[tuple[int, Indicator]]:
        """TLP:CLEAR indicators changed after ``after_seq``, in change order."""
        stmt = (
            select(indicators)
            .where(and_(indicators.c.seq > after_seq, indicators.c.tlp == "clear"))
            .order_by(indicators.c.seq)
            .limit(max(1, limit))
        )

        def work() -> list[tuple[int, Indicator]]:
            with self.store._read() as conn:
                return [
                    (row["seq"], indicator_from_row(row)) for row in conn.execute(stmt).mappings()
                ]

        return await self.store._run(work)

    async def purge_indicators(self, cutoffs: Mapping[str, float], fallback: float) -> list[str]:
        """Delete indicators last seen before their type's cutoff (Unix seconds), with sightings.

        Args:
            cutoffs: per type, the ``last_seen`` below which the indicator is dead.
            fallback: the cutoff of every type not in ``cutoffs``.

        Returns:
            The ids deleted.
        """
        known = sorted(cutoffs)
        conditions = [
            and_(indicators.c.type == kind, indicators.c.last_seen < cutoffs[kind])
            for kind in known
        ]
        conditions.append(
            and_(not_(indicators.c.type.in_(known)), indicators.c.last_seen < fallback)
        )
        stmt = select(indicators.c.id).where(or_(*conditions))

        def work() -> list[str]:
            with self.store._write() as conn:
                ids = [row[0] for row in conn.execute(stmt)]
                for start in range(0, len(ids), _PURGE_BATCH):
                    chunk = ids[start : start + _PURGE_BATCH]
                    conn.execute(delete(sightings).where(sightings.c.indicator_id.in_(chunk)))
                    conn.execute(delete(indicators).where(indicators.c.id.in_(chunk)))
                return ids

        return await self.store._run(work)
