"""CSV export and import, with a fixed header so spreadsheets and scripts can rely on it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import BinaryIO

import orjson

from dtim.errors import DTIMError, StixError
from dtim.model import Indicator, Tlp, make_indicator
from dtim.model.clock import parse_time
from dtim.stix.bundle import ImportReport, Skipped
from dtim.stix.mapping import stix_time

COLUMNS = (
    "id",
    "type",
    "value",
    "tlp",
    "confidence",
    "first_seen",
    "last_seen",
    "valid_until",
    "tags",
    "sightings",
    "custom_fields",
)
"""The export header. Cells the privacy level withholds are left empty."""

TAG_SEPARATOR = ";"


class CsvWriter:
    """Writes shared indicators as CSV rows under :data:`COLUMNS`."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, lineterminator="\n")
        self._csv.writerow(COLUMNS)
        self.count = 0
        self._flush()

    def _flush(self) -> None:
        self._out.write(self._text.getvalue().encode())
        self._text.seek(0)
        self._text.truncate()

    def write(self, shared: Mapping[str, object]) -> None:
        """Append one row."""
        self._csv.writerow([_cell(name, shared.get(name)) for name in COLUMNS])
        self.count += 1
        if self.count % 1000 == 0:
            self._flush()

    def close(self) -> None:
        """Flush the last rows."""
        self._flush()


def _cell(name: str, value: object) -> str:
    if value is None:
        return ""
    if name == "tags" and isinstance(value, list | tuple):
        return TAG_SEPARATOR.join(str(tag) for tag in value)
    if name == "custom_fields":
        return orjson.dumps(value).decode() if value else ""
    if name in ("first_seen", "last_seen", "valid_until"):
        return stix_time(value)
    return str(value)


def read_csv(
    stream: BinaryIO,
    report: ImportReport,
    *,
    now: datetime,
    default_tlp: Tlp = Tlp.GREEN,
    sources: tuple[str, ...] = (),
) -> Iterator[Indicator]:
    """Indicators from CSV: DTIM's header, any header with a ``value`` column, or bare values.

    Rows that fail validation are recorded in ``report.skipped`` (``line N``)
    and the rest go on; lines starting with ``#`` are comments.

    Raises:
        StixError: the file is not UTF-8 text, or not CSV (a cell over 128 KiB).
    """
    try:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        rows = csv.reader(text)
        header: list[str] | None = None
        for number, row in enumerate(rows, start=1):
            if not row or not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                names = [cell.strip().lower() for cell in row]
                header = names if "value" in names else ["value"]
                if "value" in names:
                    continue
            record = dict(zip(header, row, strict=False))
            try:
                indicator = _from_record(record, now=now, default_tlp=default_tlp, sources=sources)
            except DTIMError as exc:
                report.skipped.append(Skipped(f"line {number}", str(exc)))
                continue
            report.indicators += 1
            yield indicator
    except UnicodeDecodeError as exc:
        raise StixError(f"CSV is not UTF-8 text: {exc}") from None
    except csv.Error as exc:  # a cell over csv.field_size_limit(), for one
        raise StixError(f"CSV line {rows.line_num}: {exc}") from None
    finally:
        text.detach()


def _from_record(
    record: dict[str, str], *, now: datetime, default_tlp: Tlp, sources: tuple[str, ...]
) -> Indicator:
    def get(name: str) -> str:
        return (record.get(name) or "").strip()

    first = parse_time(get("first_seen"), "first_seen") if get("first_seen") else None
    last = parse_time(get("last_seen"), "last_seen") if get("last_seen") else None
    if first is None:
        first = last
    try:
        custom = orjson.loads(get("custom_fields")) if get("custom_fields") else {}
        confidence = int(get("confidence")) if get("confidence") else 50
    except ValueError as exc:
        raise StixError(f"bad custom_fields or confidence: {exc}") from None
    if not isinstance(custom, dict):
        raise StixError("custom_fields must be a JSON object")
    return make_indicator(
        get("value"),
        get("type") or None,
        now=first or now,
        confidence=confidence,
        tags=[tag for tag in get("tags").split(TAG_SEPARATOR) if tag.strip()],
        tlp=Tlp.parse(get("tlp")) if get("tlp") else default_tlp,
        custom_fields=custom,
        sources=sources,
        first_seen=first,
        last_seen=max(first, last) if first and last else None,
    )
