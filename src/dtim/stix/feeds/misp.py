"""MISP feed directories: what a MISP instance subscribes to, and MISP event files back.

A feed directory holds ``manifest.json`` (event uuid -> summary),
``hashes.csv`` (``md5(value),event uuid`` per attribute, which MISP uses for
its feed correlation) and one ``<uuid>.json`` per event, in the layout MISP's
own feed generator writes. Events are grouped by TLP and cut every
``EVENT_SIZE`` attributes so no event is too large for MISP to load.

The events name no organisation: ``Orgc`` is the DTIM software, and each
attribute's uuid is the indicator id, so a re-export updates MISP's copy
rather than duplicating it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import orjson

from dtim.errors import DTIMError, StixError, ValidationError
from dtim.model import Indicator, IndicatorType, Tlp, infer_type, make_indicator
from dtim.model.clock import parse_time
from dtim.stix.bundle import ImportReport, Skipped
from dtim.stix.mapping import stix_time

EVENT_SIZE = 50_000
FEED_NAMESPACE = uuid.UUID("3b0e6d1c-8f4a-5e2b-9c7d-1a2b3c4d5e6f")
ORGC = {"name": "DTIM", "uuid": "5f9c2d4e-0a1b-4c3d-8e7f-6a5b4c3d2e1f"}

_ATTRIBUTE: dict[str, tuple[str, str]] = {
    IndicatorType.IPV4: ("ip-dst", "Network activity"),
    IndicatorType.IPV6: ("ip-dst", "Network activity"),
    IndicatorType.CIDR: ("ip-dst", "Network activity"),
    IndicatorType.DOMAIN: ("domain", "Network activity"),
    IndicatorType.URL: ("url", "Network activity"),
    IndicatorType.EMAIL: ("email-src", "Payload delivery"),
    IndicatorType.MD5: ("md5", "Payload delivery"),
    IndicatorType.SHA1: ("sha1", "Payload delivery"),
    IndicatorType.SHA256: ("sha256", "Payload delivery"),
    IndicatorType.SHA512: ("sha512", "Payload delivery"),
}
_TLP_COLOURS = {
    Tlp.CLEAR: "#ffffff",
    Tlp.GREEN: "#33ff00",
    Tlp.AMBER: "#ffc000",
    Tlp.AMBER_STRICT: "#ffc000",
    Tlp.RED: "#ff2b2b",
}
CONFIDENCE_TAG = 'dtim:confidence="'


@dataclass
class _Event:
    uuid: str
    tlp: Tlp
    part: int
    handle: BinaryIO
    count: int = 0


class MispFeedWriter:
    """Writes a MISP feed into a directory, streaming attributes into per-TLP event files."""

    def __init__(self, directory: Path, *, stamp: datetime, event_size: int = EVENT_SIZE) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._stamp = stamp
        self._epoch = str(int(stamp.timestamp()))
        self._size = event_size
        self._open: dict[Tlp, _Event] = {}
        self._parts: dict[Tlp, int] = {}
        self._manifest: dict[str, object] = {}
        self._hashes = (directory / "hashes.csv").open("wb")
        self.count = 0

    def _header(self, tlp: Tlp, part: int, ident: str) -> dict[str, object]:
        return {
            "uuid": ident,
            "info": f"DTIM shared indicators, TLP:{tlp.value.upper()}, part {part}",
            "date": self._stamp.astimezone(UTC).date().isoformat(),
            "timestamp": self._epoch,
            "publish_timestamp": self._epoch,
            "published": True,
            "analysis": "2",
            "threat_level_id": "3",
            "Orgc": ORGC,
            "Tag": [{"name": f"tlp:{tlp.value}", "colour": _TLP_COLOURS[tlp], "exportable": True}],
        }

    def _event(self, tlp: Tlp) -> _Event:
        event = self._open.get(tlp)
        if event is not None and event.count < self._size:
            return event
        if event is not None:
            self._finish(event)
        part = self._parts.get(tlp, 0) + 1
        self._parts[tlp] = part
        ident = str(uuid.uuid5(FEED_NAMESPACE, f"{tlp.value}:{part}"))
        handle = (self._dir / f"{ident}.json").open("wb")
        header = orjson.dumps({"Event": self._header(tlp, part, ident)})
        # Re-open the object to append the attribute list after the header fields.
        handle.write(header[:-2] + b',"Attribute":[\n')
        event = _Event(ident, tlp, part, handle)
        self._open[tlp] = event
        return event

    def write(self, shared: Mapping[str, object]) -> None:
        """Append one attribute to the event of the indicator's TLP."""
        raw_tlp = shared["tlp"]
        tlp = raw_tlp if isinstance(raw_tlp, Tlp) else Tlp.parse(str(raw_tlp))
        event = self._event(tlp)
        value = str(shared["value"])
        misp_type, category = _ATTRIBUTE.get(str(shared["type"]), ("other", "Other"))
        tags = [{"name": f"tlp:{tlp.value}"}]
        tags.extend({"name": str(tag)} for tag in shared.get("tags") or [])  # type: ignore[attr-defined]  # list
        if shared.get("confidence") is not None:
            tags.append({"name": f'{CONFIDENCE_TAG}{shared["confidence"]}"'})
        attribute: dict[str, object] = {
            "uuid": str(shared["id"]),
            "type": misp_type,
            "category": category,
            "value": value,
            "to_ids": True,
            "timestamp": self._epoch,
            "comment": "",
            "Tag": tags,
        }
        if shared.get("first_seen") is not None:
            attribute["first_seen"] = stix_time(shared["first_seen"])
        if shared.get("last_seen") is not None:
            attribute["last_seen"] = stix_time(shared["last_seen"])
        event.handle.write((b",\n" if event.count else b"") + orjson.dumps(attribute))
        event.count += 1
        # MISP's hashes.csv names each value by its MD5: an index, not a security measure
        digest = hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()
        self._hashes.write(f"{digest},{event.uuid}\n".encode())
        self.count += 1

    def _finish(self, event: _Event) -> None:
        event.handle.write(b"\n]}}\n")
        event.handle.close()
        summary = self._header(event.tlp, event.part, event.uuid)
        del summary["uuid"]
        self._manifest[event.uuid] = summary

    def close(self) -> None:
        """Finish every open event and write ``manifest.json``."""
        for event in self._open.values():
            self._finish(event)
        self._open.clear()
        self._hashes.close()
        (self._dir / "manifest.json").write_bytes(
            orjson.dumps(self._manifest, option=orjson.OPT_INDENT_2)
        )


_TYPES_BACK: dict[str, str | None] = {
    "ip-dst": None,
    "ip-src": None,
    "domain": IndicatorType.DOMAIN,
    "hostname": IndicatorType.DOMAIN,
    "url": IndicatorType.URL,
    "uri": IndicatorType.URL,
    "email": IndicatorType.EMAIL,
    "email-src": IndicatorType.EMAIL,
    "email-dst": IndicatorType.EMAIL,
    "md5": IndicatorType.MD5,
    "sha1": IndicatorType.SHA1,
    "sha256": IndicatorType.SHA256,
    "sha512": IndicatorType.SHA512,
}


def misp_event_files(path: Path) -> list[Path]:
    """The event files of a feed directory (all but the manifest), or ``[path]`` for a file."""
    if path.is_dir():
        return sorted(p for p in path.glob("*.json") if p.name != "manifest.json")
    return [path]


def read_misp(
    path: Path,
    report: ImportReport,
    *,
    now: datetime,
    default_tlp: Tlp = Tlp.GREEN,
    sources: tuple[str, ...] = (),
) -> Iterator[Indicator]:
    """Indicators from MISP event files (a feed directory or one event file), event by event.

    Raises:
        StixError: a file is not a MISP event.
    """
    for file in misp_event_files(path):
        try:
            data = orjson.loads(file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise StixError(f"{file}: cannot read a MISP event ({exc})") from None
        event = data.get("Event") if isinstance(data, dict) else None
        if not isinstance(event, dict):
            raise StixError(f"{file}: not a MISP event (no 'Event' object)")
        event_tlp = _tlp_of(event.get("Tag")) or default_tlp
        attributes = _list_of(event, "Attribute", file)
        for obj in _list_of(event, "Object", file):
            if isinstance(obj, dict):
                attributes.extend(_list_of(obj, "Attribute", file))
        for attribute in attributes:
            if not isinstance(attribute, dict):
                raise StixError(f"{file}: an attribute is not a JSON object")
            ident = f"{file.name}:{attribute.get('uuid', '?')}"
            try:
                made = _from_attribute(attribute, event_tlp, now=now, sources=sources)
            except DTIMError as exc:
                report.skipped.append(Skipped(ident, str(exc)))
                continue
            if isinstance(made, str):
                report.skipped.append(Skipped(ident, made))
                continue
            report.indicators += 1
            yield made


def _list_of(container: dict[str, object], key: str, file: Path) -> list[object]:
    value = container.get(key) or []
    if not isinstance(value, list):
        raise StixError(f"{file}: {key!r} must be a list, not {type(value).__name__}")
    return list(value)


def _tlp_of(tags: object) -> Tlp | None:
    found: Tlp | None = None
    for tag in tags if isinstance(tags, list) else []:
        name = str(tag.get("name", "")) if isinstance(tag, dict) else ""
        if name.lower().startswith("tlp:"):
            try:
                tlp = Tlp.parse(name)
            except DTIMError:
                continue
            found = tlp if found is None else found.stricter(tlp)
    return found


def _from_attribute(
    attribute: dict[str, object], event_tlp: Tlp, *, now: datetime, sources: tuple[str, ...]
) -> Indicator | str:
    if attribute.get("deleted") in (True, "1"):
        return "deleted attribute"
    if attribute.get("to_ids") in (False, "0", 0):
        return "to_ids is off (not meant for detection)"
    misp_type = str(attribute.get("type", ""))
    value = str(attribute.get("value", ""))
    if "|" in misp_type:
        # Composite types (ip-dst|port, filename|sha256): keep the indicator half.
        head, _, tail = misp_type.partition("|")
        left, _, right = value.partition("|")
        misp_type, value = (head, left) if head in _TYPES_BACK else (tail, right)
    if misp_type not in _TYPES_BACK:
        return f"MISP attribute type {misp_type!r} has no DTIM indicator type"
    kind = _TYPES_BACK[misp_type] or infer_type(value).value
    tags: list[str] = []
    confidence = 50
    raw_tags = attribute.get("Tag")
    for tag in raw_tags if isinstance(raw_tags, list) else []:
        name = str(tag.get("name", "")) if isinstance(tag, dict) else ""
        if name.startswith(CONFIDENCE_TAG):
            raw = name.removeprefix(CONFIDENCE_TAG).rstrip('"')
            try:
                confidence = int(raw or 50)
            except ValueError:
                raise ValidationError("confidence", f"tag {name!r} is not a number") from None
        elif name and not name.lower().startswith("tlp:"):
            tags.append(name)
    tlp = event_tlp.stricter(_tlp_of(raw_tags) or event_tlp)
    stamp = _epoch(attribute.get("timestamp")) or now
    first = (
        parse_time(str(attribute["first_seen"]), "first_seen")
        if attribute.get("first_seen")
        else stamp
    )
    last = (
        parse_time(str(attribute["last_seen"]), "last_seen")
        if attribute.get("last_seen")
        else first
    )
    return make_indicator(
        value,
        kind,
        now=first,
        confidence=confidence,
        tags=tags,
        tlp=tlp,
        sources=sources,
        first_seen=first,
        last_seen=max(first, last),
    )


def _epoch(raw: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(raw)), UTC) if raw is not None else None
    except (ValueError, OverflowError, OSError):  # not a number, or beyond the calendar
        return None
