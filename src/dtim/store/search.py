"""Dashboard queries: search with keyset pagination, overview statistics, indicator history.

Every search is one indexed range scan that stops after ``limit + 1`` rows, so a
page costs the same on a store of 1,000 or 1,000,000 indicators: the cursor is
the last row's (sort value, seq), never an OFFSET.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, NamedTuple, TypeVar

import orjson
from sqlalchemy import BigInteger as SaBigInteger
from sqlalchemy import ColumnElement, Select, and_, cast, func, literal, or_, select, tuple_
from sqlalchemy.engine import Connection, Row

from dtim.errors import ValidationError
from dtim.model import Indicator, JsonObject, JsonValue, infer_type, normalize, refang
from dtim.store.netkeys import NETWORK_TYPES, network_range
from dtim.store.rows import dumps, from_epoch, indicator_from_row
from dtim.store.tables import MAX_SEQUENCE, indicator_events, indicators

MAX_PAGE = 500


class SortKey(StrEnum):
    """Orders the dashboard offers; each is backed by a (column, seq) index."""

    CHANGED = "changed"
    LAST_SEEN = "last_seen"
    FIRST_SEEN = "first_seen"
    CONFIDENCE = "confidence"
    VALUE = "value"


_SORT_COLUMNS = {
    SortKey.CHANGED: indicators.c.seq,
    SortKey.LAST_SEEN: indicators.c.last_seen,
    SortKey.FIRST_SEEN: indicators.c.first_seen,
    SortKey.CONFIDENCE: indicators.c.confidence,
    SortKey.VALUE: indicators.c.value,
}


@dataclass(frozen=True, slots=True)
class IndicatorSearch:
    """A dashboard search.

    Attributes:
        text: value, value prefix, address (finds it and the CIDRs containing it) or
            CIDR (finds every address and network inside it); defanged input is accepted.
        type, tlp, source: exact filters.
        min_confidence, max_confidence: stored (base) confidence bounds.
        seen_after: only indicators last seen at or after this time (the age filter).
        sort, descending: the order.
        cursor: from the previous page's ``next_cursor``.
        limit: rows per page (at most 500).
    """

    text: str = ""
    type: str | None = None
    tlp: str | None = None
    source: str | None = None
    min_confidence: int | None = None
    max_confidence: int | None = None
    seen_after: datetime | None = None
    sort: SortKey = SortKey.CHANGED
    descending: bool = True
    cursor: str | None = None
    limit: int = 50


class IndicatorSummary(NamedTuple):
    """What the dashboard's indicator table shows of one indicator, and nothing more.

    A table page reads these instead of whole :class:`Indicator` objects: rebuilding
    tags, recipients, custom fields and four timestamps for 50 rows took longer than
    the query that found them.
    """

    id: str
    type: str
    value: str
    tlp: str
    confidence: int
    sightings: int
    sources: tuple[str, ...]
    last_seen: datetime


_SUMMARY_COLUMNS = tuple(indicators.c[name] for name in IndicatorSummary._fields)

Item = TypeVar("Item", Indicator, IndicatorSummary)


@dataclass(frozen=True, slots=True)
class IndicatorPage(Generic[Item]):
    """One page of results and the cursor of the next (None on the last page)."""

    items: tuple[Item, ...]
    next_cursor: str | None
    mode: str
    """How the text was read: ``all``, ``prefix``, ``address`` or ``network``."""


@dataclass(frozen=True, slots=True)
class HourlyCount:
    """New indicators in one hour from one source."""

    hour: datetime
    source: str
    count: int


@dataclass(frozen=True, slots=True)
class IndicatorStats:
    """What the overview charts show."""

    hourly: tuple[HourlyCount, ...]
    confidence_histogram: tuple[int, ...]
    """Counts per confidence decile: 0-9, 10-19, ... 90-100 (ten buckets)."""
    by_origin: dict[str, int] = field(default_factory=dict)
    """``local`` (a watcher or an admin saw it) vs ``received`` (peers, feeds)."""


@dataclass(frozen=True, slots=True)
class IndicatorEvent:
    """One entry of an indicator's history (added, edited, deleted by an admin ...)."""

    indicator_id: str
    at: datetime
    action: str
    actor: str
    detail: JsonObject


def encode_cursor(sort_value: JsonValue, seq: int) -> str:
    """An opaque, URL-safe cursor for the row after which the next page starts."""
    return base64.urlsafe_b64encode(orjson.dumps([sort_value, seq])).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, int]:
    """Read a cursor made by :func:`encode_cursor`.

    Raises:
        ValidationError: the cursor was not made by us.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, seq = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise ValidationError("cursor", "malformed page cursor") from None
    if (
        not isinstance(seq, int)
        or isinstance(seq, bool)
        or not -MAX_SEQUENCE <= seq <= MAX_SEQUENCE
        or not isinstance(value, int | float | str)
    ):
        raise ValidationError("cursor", "malformed page cursor")
    return value, seq


def _prefix_bounds(prefix: str) -> tuple[str, str | None]:
    # Byte order equals code point order in UTF-8, so bumping the last code point
    # gives the first string that no longer starts with the prefix.
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return prefix, None
    bumped = last + 1
    if 0xD800 <= bumped <= 0xDFFF:
        bumped = 0xE000
    return prefix, prefix[:-1] + chr(bumped)


def _search_term(text: str) -> str:
    term = refang(text.strip())
    try:
        return normalize(infer_type(term).value, term)
    except ValidationError:
        return term


def _bytewise(column: Any, dialect: str) -> Any:
    return column.collate("C") if dialect == "postgresql" else column


def search_statement(
    search: IndicatorSearch, dialect: str, *, summary: bool = False
) -> tuple[Select[Any], str]:
    """The SELECT for one page of ``search`` (``limit + 1`` rows) and the text's mode.

    The rows hold every column (or, with ``summary``, those of
    :class:`IndicatorSummary`), then the row's seq and sort value for the cursor.

    Raises:
        ValidationError: a malformed cursor or limit.
    """
    if not 1 <= search.limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be 1-{MAX_PAGE}, got {search.limit}")
    conditions: list[ColumnElement[bool]] = []
    mode = "all"
    text = search.text.strip()
    if text:
        network = network_range(refang(text))
        if network is not None and "/" in text:
            mode = "network"
            lo, hi = network
            conditions += [
                indicators.c.type.in_(sorted(NETWORK_TYPES)),
                indicators.c.net_lo >= lo,
                indicators.c.net_lo <= hi,
                indicators.c.net_hi <= hi,
            ]
        elif network is not None:
            mode = "address"
            key = network[0]
            exact = and_(indicators.c.type.in_(("ipv4", "ipv6")), indicators.c.net_lo == key)
            # Networks that contain the address: they start at or below it, in its family.
            containing = and_(
                indicators.c.type == "cidr",
                indicators.c.net_lo >= key[0],
                indicators.c.net_lo <= key,
                indicators.c.net_hi >= key,
            )
            conditions.append(or_(exact, containing))
        else:
            mode = "prefix"
            lower, upper = _prefix_bounds(_search_term(text))
            value = _bytewise(indicators.c.value, dialect)
            conditions.append(value >= lower)
            if upper is not None:
                conditions.append(value < upper)
    if search.type:
        conditions.append(indicators.c.type == search.type)
    if search.tlp:
        conditions.append(indicators.c.tlp == search.tlp)
    if search.source:
        escaped = search.source.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(indicators.c.sources.like(f'%"{escaped}"%', escape="\\"))
    if search.min_confidence is not None:
        conditions.append(indicators.c.confidence >= search.min_confidence)
    if search.max_confidence is not None:
        conditions.append(indicators.c.confidence <= search.max_confidence)
    if search.seen_after is not None:
        conditions.append(indicators.c.last_seen >= search.seen_after.timestamp())
    column = _SORT_COLUMNS[search.sort]
    if search.sort is SortKey.VALUE:
        column = _bytewise(column, dialect)
    if search.cursor:
        after, seq = decode_cursor(search.cursor)
        if search.sort is SortKey.CHANGED:
            conditions.append(
                indicators.c.seq < seq if search.descending else indicators.c.seq > seq
            )
        else:
            row_key = tuple_(column, indicators.c.seq)
            bound = tuple_(literal(after), literal(seq))
            conditions.append(row_key < bound if search.descending else row_key > bound)
    order: list[Any] = [column.desc() if search.descending else column.asc()]
    if search.sort is not SortKey.CHANGED:
        order.append(indicators.c.seq.desc() if search.descending else indicators.c.seq.asc())
    shown = _SUMMARY_COLUMNS if summary else tuple(indicators.c)
    cursor_columns = (indicators.c.seq.label("cursor_seq"), column.label("cursor_key"))
    stmt = (
        select(*shown, *cursor_columns).where(*conditions).order_by(*order).limit(search.limit + 1)
    )
    return stmt, mode


def fetch_page(
    conn: Connection,
    stmt: Select[Any],
    mode: str,
    limit: int,
    build: Callable[[Row[Any]], Item],
) -> IndicatorPage[Item]:
    """Run a :func:`search_statement` and make its rows into ``build``'s items."""
    rows = list(conn.execute(stmt))
    next_cursor = None
    if len(rows) > limit:
        del rows[limit:]
        *_, seq, sort_value = rows[-1]
        next_cursor = encode_cursor(sort_value, seq)
    return IndicatorPage(tuple(build(row) for row in rows), next_cursor, mode)


def indicator_of(row: Row[Any]) -> Indicator:
    """The whole indicator from a full :func:`search_statement` row."""
    return indicator_from_row(row._mapping)


def summary_of(row: Row[Any]) -> IndicatorSummary:
    """The table row from a ``summary`` :func:`search_statement` row."""
    id_, type_, value, tlp, confidence, sightings, sources, last_seen, *_ = row
    return IndicatorSummary(
        id_,
        type_,
        value,
        tlp,
        confidence,
        sightings,
        tuple(orjson.loads(sources)),
        from_epoch(last_seen),
    )


def indicator_stats(
    conn: Connection, *, since: datetime, local_sources: Sequence[str]
) -> IndicatorStats:
    """New indicators per hour and source since ``since``, confidence deciles, origins."""
    hour: Any = cast(indicators.c.created / 3600, SaBigInteger)
    if conn.dialect.name == "postgresql":
        hour = func.floor(indicators.c.created / 3600).cast(SaBigInteger)
    counts: dict[tuple[int, str], int] = {}
    stmt = (
        select(hour.label("hour"), indicators.c.sources, func.count())
        .where(indicators.c.created >= since.timestamp())
        .group_by(hour, indicators.c.sources)
    )
    for bucket, raw_sources, count in conn.execute(stmt):
        for source in orjson.loads(raw_sources) or ["unknown"]:
            key = (int(bucket), str(source))
            counts[key] = counts.get(key, 0) + int(count)
    hourly = tuple(
        HourlyCount(from_epoch(bucket * 3600), source, count)
        for (bucket, source), count in sorted(counts.items())
    )
    deciles = [0] * 10
    decile: Any = cast(indicators.c.confidence / 10, SaBigInteger)
    if conn.dialect.name == "postgresql":
        decile = func.floor(indicators.c.confidence / 10)
    for bucket, count in conn.execute(select(decile, func.count()).group_by(decile)):
        deciles[min(9, max(0, int(bucket)))] += int(count)
    local = set(local_sources)
    origins = {"local": 0, "received": 0}
    for raw_sources, count in conn.execute(
        select(indicators.c.sources, func.count()).group_by(indicators.c.sources)
    ):
        names = orjson.loads(raw_sources)
        origins["local" if local.intersection(names) else "received"] += int(count)
    return IndicatorStats(hourly, tuple(deciles), origins)


def add_event(conn: Connection, event: IndicatorEvent) -> None:
    """Append one history entry."""
    conn.execute(
        indicator_events.insert().values(
            indicator_id=event.indicator_id,
            at=event.at.timestamp(),
            action=event.action,
            actor=event.actor,
            detail=dumps(event.detail),
        )
    )


def events_for(conn: Connection, indicator_id: str, limit: int) -> list[IndicatorEvent]:
    """An indicator's history, newest first."""
    stmt = (
        select(indicator_events)
        .where(indicator_events.c.indicator_id == indicator_id)
        .order_by(indicator_events.c.at.desc(), indicator_events.c.id.desc())
        .limit(limit)
    )
    return [
        IndicatorEvent(
            row["indicator_id"],
            from_epoch(row["at"]),
            row["action"],
            row["actor"],
            orjson.loads(row["detail"]),
        )
        for row in conn.execute(stmt).mappings()
    ]
