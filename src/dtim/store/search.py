"""Dashboard queries: search with keyset pagination, overview statistics, indicator history.

Every search is one indexed range scan that stops after ``limit + 1`` rows, so a
page costs the same on a store of 1,000 or 1,000,000 indicators: the cursor is
the last row's (sort value, seq), never an OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, NamedTuple, TypeVar

import orjson
from sqlalchemy import BigInteger as SaBigInteger
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import BindParameter

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
    last_seen: float
    """Seconds since the epoch, as stored: the page shows it to the minute."""


_SUMMARY_COLUMNS = tuple(indicators.c[name] for name in IndicatorSummary._fields)
_INDICATOR_NAMES = tuple(column.name for column in indicators.c)
_SQLITE_NAMED = SQLiteDialect_pysqlite(paramstyle="named")

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


@dataclass(frozen=True, slots=True)
class PreparedSearch:
    """A search as SQL: a statement shared by every search of its shape, and this one's values."""

    shape: _Shape
    params: dict[str, Any]
    limit: int

    @property
    def statement(self) -> Select[Any]:
        """The SELECT of every search of this shape (built once per shape)."""
        return _statement(self.shape)

    @property
    def mode(self) -> str:
        """How the text was read: ``all``, ``prefix``, ``address`` or ``network``."""
        return self.shape.mode

    def sqlite_text(self) -> tuple[str, dict[str, Any]]:
        """The statement as SQLite SQL with named parameters, and every value it binds.

        For reads through sqlite3 itself (:mod:`dtim.store.loop_reads`), which skip
        SQLAlchemy's execution: the same text SQLAlchemy would send.
        """
        text, constants = _sqlite_text(self.shape)
        return text, {**constants, **self.params}


class _Shape(NamedTuple):
    """What decides the SQL text of a search; its values are bound parameters."""

    mode: str
    params: frozenset[str]
    sort: SortKey
    descending: bool
    summary: bool
    dialect: str


def prepare_search(
    search: IndicatorSearch, dialect: str, *, summary: bool = False
) -> PreparedSearch:
    """The SELECT for one page of ``search`` (``limit + 1`` rows) and its parameters.

    The rows hold every column (or, with ``summary``, those of
    :class:`IndicatorSummary`), then the row's seq and sort value for the cursor.
    Statements are cached per shape (text mode, filters present, order): building
    and hashing a new one for every page cost about as much as SQLite's reading.

    Raises:
        ValidationError: a malformed cursor or limit.
    """
    if not 1 <= search.limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be 1-{MAX_PAGE}, got {search.limit}")
    params: dict[str, Any] = {"page_rows": search.limit + 1}
    mode = "all"
    text = search.text.strip()
    if text:
        network = network_range(refang(text))
        if network is not None and "/" in text:
            mode = "network"
            params["net_lo"], params["net_hi"] = network
        elif network is not None:
            mode = "address"
            params["address"] = network[0]
            params["family"] = network[0][0]
        else:
            mode = "prefix"
            params["prefix"], upper = _prefix_bounds(_search_term(text))
            if upper is not None:
                params["prefix_end"] = upper
    if search.type:
        params["type"] = search.type
    if search.tlp:
        params["tlp"] = search.tlp
    if search.source:
        escaped = search.source.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["source_pattern"] = f'%"{escaped}"%'
    if search.min_confidence is not None:
        params["min_confidence"] = search.min_confidence
    if search.max_confidence is not None:
        params["max_confidence"] = search.max_confidence
    if search.seen_after is not None:
        params["seen_after"] = search.seen_after.timestamp()
    if search.cursor:
        params.update(_cursor_for(search.cursor, search.sort))
    shape = _Shape(mode, frozenset(params), search.sort, search.descending, summary, dialect)
    return PreparedSearch(shape, params, search.limit)


def _cursor_for(cursor: str, sort: SortKey) -> dict[str, Any]:
    """A cursor's bound parameters, refused unless its value could be a stored row's.

    Cursors come back from clients, and a value the column cannot hold (a
    confidence past 32 bits, a NUL in a PostgreSQL text) would otherwise fail in
    the database instead of being refused as bad input.
    """
    value, seq = decode_cursor(cursor)
    if sort is SortKey.CHANGED:
        return {"cursor_seq": seq}  # the sort value is the seq itself
    if sort is SortKey.CONFIDENCE:
        fits = isinstance(value, int) and 0 <= value <= 100
    elif sort is SortKey.VALUE:
        fits = isinstance(value, str) and "\x00" not in value
    else:  # first or last seen: seconds since the epoch
        fits = isinstance(value, int | float) and math.isfinite(value)
    if isinstance(value, bool) or not fits:
        raise ValidationError("cursor", f"page cursor does not belong to a {sort.value} order")
    return {"cursor_key": value, "cursor_seq": seq}


@functools.lru_cache(maxsize=256)
def _statement(shape: _Shape) -> Select[Any]:
    c = indicators.c
    named = shape.params
    conditions: list[ColumnElement[bool]] = []
    if shape.mode == "network":
        conditions += [
            c.type.in_(sorted(NETWORK_TYPES)),
            c.net_lo >= bindparam("net_lo"),
            c.net_lo <= bindparam("net_hi"),
            c.net_hi <= bindparam("net_hi"),
        ]
    elif shape.mode == "address":
        address: BindParameter[Any] = bindparam("address")
        exact = and_(c.type.in_(("ipv4", "ipv6")), c.net_lo == address)
        # Networks that contain the address: they start at or below it, in its family.
        containing = and_(
            c.type == "cidr",
            c.net_lo >= bindparam("family"),
            c.net_lo <= address,
            c.net_hi >= address,
        )
        conditions.append(or_(exact, containing))
    elif shape.mode == "prefix":
        value = _bytewise(c.value, shape.dialect)
        conditions.append(value >= bindparam("prefix"))
        if "prefix_end" in named:
            conditions.append(value < bindparam("prefix_end"))
    if "type" in named:
        conditions.append(c.type == bindparam("type"))
    if "tlp" in named:
        conditions.append(c.tlp == bindparam("tlp"))
    if "source_pattern" in named:
        conditions.append(c.sources.like(bindparam("source_pattern"), escape="\\"))
    if "min_confidence" in named:
        conditions.append(c.confidence >= bindparam("min_confidence"))
    if "max_confidence" in named:
        conditions.append(c.confidence <= bindparam("max_confidence"))
    if "seen_after" in named:
        conditions.append(c.last_seen >= bindparam("seen_after"))
    column = _SORT_COLUMNS[shape.sort]
    if shape.sort is SortKey.VALUE:
        column = _bytewise(column, shape.dialect)
    if "cursor_seq" in named:
        if shape.sort is SortKey.CHANGED:
            after = bindparam("cursor_seq", type_=c.seq.type)
            conditions.append(c.seq < after if shape.descending else c.seq > after)
        else:
            row_key = tuple_(column, c.seq)
            bound = tuple_(
                bindparam("cursor_key", type_=column.type),
                bindparam("cursor_seq", type_=c.seq.type),
            )
            conditions.append(row_key < bound if shape.descending else row_key > bound)
    order: list[Any] = [column.desc() if shape.descending else column.asc()]
    if shape.sort is not SortKey.CHANGED:
        order.append(c.seq.desc() if shape.descending else c.seq.asc())
    shown = _SUMMARY_COLUMNS if shape.summary else tuple(c)
    cursor_columns = (c.seq.label("cursor_seq"), column.label("cursor_key"))
    return (
        select(*shown, *cursor_columns)
        .where(*conditions)
        .order_by(*order)
        .limit(bindparam("page_rows", type_=Integer))
    )


@functools.lru_cache(maxsize=256)
def _sqlite_text(shape: _Shape) -> tuple[str, dict[str, Any]]:
    # Searched values compile as named parameters; constants (the OFFSET SQLite's compiler
    # adds, the expanded IN lists) come back with their values.
    statement = _statement(shape).params(dict.fromkeys(shape.params))
    compiled = statement.compile(dialect=_SQLITE_NAMED, compile_kwargs={"render_postcompile": True})
    constants = {k: v for k, v in compiled.params.items() if k not in shape.params}
    return str(compiled), constants


def fetch_page(
    conn: Connection, prepared: PreparedSearch, build: Callable[[Sequence[Any]], Item]
) -> IndicatorPage[Item]:
    """Run a :func:`prepare_search` and make its rows into ``build``'s items."""
    # One fetchall: iterating the result would fetch row by row.
    return page_of(conn.execute(prepared.statement, prepared.params).all(), prepared, build)


def page_of(
    rows: Sequence[Sequence[Any]], prepared: PreparedSearch, build: Callable[[Sequence[Any]], Item]
) -> IndicatorPage[Item]:
    """The page of ``build``'s items from the rows a :func:`prepare_search` statement returned."""
    next_cursor = None
    if len(rows) > prepared.limit:
        rows = rows[: prepared.limit]
        *_, seq, sort_value = rows[-1]
        next_cursor = encode_cursor(sort_value, seq)
    return IndicatorPage(tuple(map(build, rows)), next_cursor, prepared.mode)


def indicator_of(row: Sequence[Any]) -> Indicator:
    """The whole indicator from a row of a :func:`prepare_search` statement."""
    # The row ends with the cursor's two columns, which zip leaves out.
    return indicator_from_row(dict(zip(_INDICATOR_NAMES, row, strict=False)))


def summary_of(row: Sequence[Any]) -> IndicatorSummary:
    """The table row from a row of a ``summary`` :func:`prepare_search` statement."""
    id_, type_, value, tlp, confidence, sightings, sources, last_seen, *_ = row
    return IndicatorSummary(
        id_,
        type_,
        value,
        tlp,
        confidence,
        sightings,
        tuple(orjson.loads(sources)),
        last_seen,
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
