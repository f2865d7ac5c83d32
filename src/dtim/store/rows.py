"""Conversion between model objects and table rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import RowMapping

from dtim.model import Indicator, IndicatorId, Peer, PeerId, PeerStatus, Scope, Tlp
from dtim.store.netkeys import indicator_range


def to_epoch(moment: datetime) -> float:
    """Seconds since the epoch of an aware datetime."""
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Aware UTC datetime from seconds since the epoch."""
    return datetime.fromtimestamp(seconds, UTC)


def dumps(value: Any) -> str:
    """Compact JSON text for a JSON column."""
    return orjson.dumps(value).decode()


INDICATOR_COLUMNS = (
    "id",
    "type",
    "value",
    "confidence",
    "created",
    "modified",
    "first_seen",
    "last_seen",
    "sightings",
    "tags",
    "tlp",
    "scope",
    "recipients",
    "custom_fields",
    "sources",
    "seq",
    "net_lo",
    "net_hi",
)
"""The indicators table's columns, in the order of :func:`indicator_values`."""


def indicator_values(indicator: Indicator, seq: int) -> tuple[Any, ...]:
    """The row that stores ``indicator`` with change number ``seq``, as ``INDICATOR_COLUMNS``.

    Bulk writes on SQLite bind these positionally: naming 18 parameters per row costs
    sqlite3 a lookup each, about a quarter of the insert itself.
    """
    net_lo, net_hi = indicator_range(indicator.type, indicator.value)
    return (
        indicator.id,
        indicator.type,
        indicator.value,
        indicator.confidence,
        indicator.created.timestamp(),
        indicator.modified.timestamp(),
        indicator.first_seen.timestamp(),
        indicator.last_seen.timestamp(),
        indicator.sightings,
        dumps(list(indicator.tags)),
        indicator.tlp.value,
        indicator.scope.value,
        dumps(list(indicator.recipients)),
        dumps(dict(indicator.custom_fields)),
        dumps(list(indicator.sources)),
        seq,
        net_lo,
        net_hi,
    )


def indicator_row(indicator: Indicator, seq: int) -> dict[str, Any]:
    """The row that stores ``indicator`` with change number ``seq``, by column name."""
    return dict(zip(INDICATOR_COLUMNS, indicator_values(indicator, seq), strict=True))


def indicator_from_row(row: RowMapping | Mapping[str, Any]) -> Indicator:
    """Rebuild the model object from a stored row."""
    return Indicator(
        id=IndicatorId(row["id"]),
        type=row["type"],
        value=row["value"],
        confidence=row["confidence"],
        created=from_epoch(row["created"]),
        modified=from_epoch(row["modified"]),
        first_seen=from_epoch(row["first_seen"]),
        last_seen=from_epoch(row["last_seen"]),
        sightings=row["sightings"],
        tags=tuple(orjson.loads(row["tags"])),
        tlp=Tlp(row["tlp"]),
        scope=Scope(row["scope"]),
        recipients=tuple(orjson.loads(row["recipients"])),
        custom_fields=orjson.loads(row["custom_fields"]),
        sources=tuple(orjson.loads(row["sources"])),
    )


def peer_row(peer: Peer) -> dict[str, Any]:
    """The row that stores ``peer``."""
    return {
        "id": peer.id,
        "endpoint": peer.endpoint,
        "public_key": peer.public_key,
        "fingerprint": peer.fingerprint,
        "status": peer.status.value,
        "groups": dumps(list(peer.groups)),
        "score": peer.score,
        "last_contact": peer.last_contact.timestamp() if peer.last_contact else None,
        "added_at": peer.added_at.timestamp(),
        "source": peer.source,
    }


def peer_from_row(row: RowMapping | Mapping[str, Any]) -> Peer:
    """Rebuild a peer from its row."""
    return Peer(
        id=PeerId(row["id"]),
        endpoint=row["endpoint"],
        public_key=row["public_key"],
        fingerprint=row["fingerprint"],
        status=PeerStatus(row["status"]),
        added_at=from_epoch(row["added_at"]),
        groups=tuple(orjson.loads(row["groups"])),
        score=row["score"],
        last_contact=from_epoch(row["last_contact"]) if row["last_contact"] is not None else None,
        source=row["source"],
    )
