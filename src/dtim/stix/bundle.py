"""STIX 2.1 bundles (§8): a streaming writer and a reader that keeps up with it.

The writer puts one object per line::

    {"type":"bundle","id":"bundle--...","objects":[
    {...indicator...},
    {...sighting...},
    {...marking-definition...}
    ]}

which is ordinary JSON for every consumer, and lets :func:`read_objects` read
such files (DTIM's own exports) one line at a time, so a million indicators
never sit in memory at once. Other layouts are parsed whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

import orjson

from dtim.errors import StixError, ValidationError
from dtim.model import Indicator, Tlp
from dtim.model.clock import iso, parse_time
from dtim.stix.mapping import indicators_from_stix, shared_objects
from dtim.stix.markings import StixObject, definition_objects, tlp_of_definition
from dtim.stix.patterns import UnsupportedPatternError

_HEADER_START = b'{"type":"bundle","id":"bundle--'
_SUPPORT_TYPES = frozenset({"marking-definition", "identity", "extension-definition", "sighting"})


class BundleWriter:
    """Writes a bundle to a binary stream, object by object.

    Call :meth:`write` once per shared indicator, then :meth:`close`, which
    appends the marking and extension definitions the objects refer to.
    """

    def __init__(self, out: BinaryIO, *, stamp: datetime, bundle_id: str | None = None) -> None:
        self._out = out
        self._stamp = iso(stamp)
        self._tlps: set[Tlp] = set()
        self._extension = False
        self._sep = b"\n"
        self.count = 0
        ident = bundle_id or f"bundle--{uuid.uuid4()}"
        out.write(b'{"type":"bundle","id":"' + ident.encode() + b'","objects":[')

    def write(self, shared: Mapping[str, object]) -> None:
        """Append the STIX objects for one shared indicator."""
        for obj in shared_objects(shared, stamp=self._stamp):
            self._emit(obj)
        tlp = shared["tlp"]
        self._tlps.add(tlp if isinstance(tlp, Tlp) else Tlp.parse(str(tlp)))
        if not self._extension and (
            "last_seen" in shared or shared.get("recipients") or shared.get("custom_fields")
        ):
            self._extension = True
        self.count += 1

    def _emit(self, obj: StixObject) -> None:
        self._out.write(self._sep + orjson.dumps(obj))
        self._sep = b",\n"

    def close(self) -> None:
        """Write the definitions and close the JSON (the stream stays open)."""
        for obj in definition_objects(self._tlps, with_extension=self._extension):
            self._emit(obj)
        self._out.write(b"\n]}\n")


def read_objects(stream: BinaryIO) -> Iterator[StixObject]:
    """The objects of a bundle, streamed when it has DTIM's one-object-per-line layout.

    Raises:
        StixError: the input is not a JSON STIX bundle.
    """
    first = stream.readline()
    if first.startswith(_HEADER_START) and first.rstrip().endswith(b'"objects":['):
        yield from _read_lines(stream)
        return
    data = _loads(first + stream.read(), "bundle")
    yield from bundle_objects(data)


def _read_lines(stream: BinaryIO) -> Iterator[StixObject]:
    for number, line in enumerate(stream, start=2):
        text = line.strip()
        if text in (b"]}", b""):
            continue
        obj = _loads(text.removesuffix(b","), f"line {number}")
        if not isinstance(obj, dict):
            raise StixError(f"line {number}: a bundle object must be a JSON object")
        yield obj


def _loads(raw: bytes, where: str) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StixError(f"{where}: not valid JSON ({exc})") from None


def bundle_objects(data: object) -> list[StixObject]:
    """Check that ``data`` is a STIX bundle (or a TAXII envelope) and return its objects.

    Raises:
        StixError: it is not.
    """
    if not isinstance(data, dict):
        raise StixError("a bundle must be a JSON object")
    if "type" in data and data.get("type") != "bundle":
        raise StixError(f"expected a STIX bundle, got type {data.get('type')!r}")
    objects = data.get("objects", [])
    if not isinstance(objects, list):
        raise StixError("'objects' must be a list")
    for index, obj in enumerate(objects):
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("type"), str)
            or not isinstance(obj.get("id"), str)
        ):
            raise StixError(f"objects[{index}] is not a STIX object (needs a type and an id)")
    return objects


@dataclass(frozen=True, slots=True)
class Skipped:
    """An object that was not imported, and why."""

    object_id: str
    reason: str


@dataclass(slots=True)
class ImportReport:
    """What an import did: indicators made, objects skipped with reasons, others ignored by type."""

    indicators: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)


def import_indicators(
    objects: Iterable[StixObject],
    report: ImportReport,
    *,
    now: datetime,
    default_tlp: Tlp = Tlp.GREEN,
    sources: tuple[str, ...] = (),
    extra_tags: tuple[str, ...] = (),
) -> Iterator[Indicator]:
    """DTIM indicators for the importable STIX indicators among ``objects``.

    TLP markings defined in the stream under their own ids are recognised
    for the objects that follow them; the official ids are always known.
    Indicators that cannot be imported are recorded in ``report.skipped``;
    other object types are counted in ``report.ignored``.
    """
    definitions: dict[str, Tlp] = {}
    for obj in objects:
        kind = str(obj.get("type"))
        ident = str(obj.get("id"))
        if kind == "marking-definition":
            tlp = tlp_of_definition(obj)
            if tlp is not None:
                definitions[ident] = tlp
        if kind != "indicator":
            if kind not in _SUPPORT_TYPES:
                report.ignored[kind] = report.ignored.get(kind, 0) + 1
            continue
        reason = _skip_reason(obj, now)
        if reason:
            report.skipped.append(Skipped(ident, reason))
            continue
        try:
            made = indicators_from_stix(
                obj,
                now=now,
                definitions=definitions,
                default_tlp=default_tlp,
                sources=sources,
                extra_tags=extra_tags,
            )
        except UnsupportedPatternError as exc:
            report.skipped.append(Skipped(ident, exc.reason))
            continue
        except (StixError, ValidationError) as exc:
            report.skipped.append(Skipped(ident, str(exc)))
            continue
        report.indicators += len(made)
        yield from made


def _skip_reason(obj: StixObject, now: datetime) -> str:
    if obj.get("revoked") is True:
        return "revoked"
    until = obj.get("valid_until")
    if isinstance(until, str):
        try:
            if parse_time(until, "valid_until") <= now:
                return f"expired (valid_until {until})"
        except ValidationError as exc:
            return str(exc)
    return ""
