"""Reading Zeek logs: TSV with ``#separator``/``#fields`` headers, or JSON lines.

One :class:`ZeekParser` per file, because TSV headers are per-file state.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from dtim.errors import ParseError
from dtim.watchers.base import Observation
from dtim.watchers.timestamps import TimeReader

NAME = "zeek"
_ROTATED = re.compile(r"^([a-z_0-9]+)[.-]")
_HEX_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
LOGS = ("notice", "intel", "conn", "files")


@dataclass(slots=True)
class ZeekRecord(Observation):
    """One record of a Zeek log: its log type and its fields (unset fields left out)."""

    log: str
    fields: dict[str, object]

    def text(self, key: str) -> str:
        """A field as text ("" when unset)."""
        value = self.fields.get(key)
        if value is None:
            return ""
        if isinstance(value, list):
            return ",".join(str(item) for item in value)
        return str(value)

    def items(self, key: str) -> list[str]:
        """A set/vector field as a list of strings."""
        value = self.fields.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return [str(item) for item in value]
        return [part for part in str(value).split(",") if part]


def log_type(path: str) -> str:
    """``conn`` for ``conn.log``, ``conn.2024-01-01-10-00-00.log.gz`` or ``conn-2024.log``."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    match = _ROTATED.match(name)
    return match.group(1) if match else name


class ZeekParser:
    """Parses one Zeek log file, TSV or JSON, keeping its header state."""

    def __init__(self, reader: TimeReader, path: str = "") -> None:
        self.reader = reader
        self.log = log_type(path) if path else ""
        self.separator = "\t"
        self.set_separator = ","
        self.unset = "-"
        self.empty = "(empty)"
        self.fields: list[str] = []

    def parse(self, line: str) -> Observation | None:
        """One line: header lines update state and return None.

        Raises:
            ParseError: a JSON line that is not an object, a TSV line before ``#fields`` or with the
                wrong number of columns, or a bad ``ts``.
        """
        if line.startswith("{"):
            return self._json(line)
        if line.startswith("#"):
            self._header(line)
            return None
        if not line.strip():
            return None
        if not self.fields:
            raise ParseError(NAME, "TSV data line before any #fields header")
        values = line.split(self.separator)
        if len(values) != len(self.fields):
            raise ParseError(NAME, f"{len(values)} columns where #fields names {len(self.fields)}")
        record: dict[str, object] = {}
        for key, value in zip(self.fields, values, strict=True):
            if value == self.unset:
                continue
            if value == self.empty:
                record[key] = []
                continue
            record[key] = (
                _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
                if "\\x" in value
                else value
            )
        return self._record(self.log, record, line)

    def _header(self, line: str) -> None:
        if line.startswith("#separator"):
            raw = line[len("#separator") :].strip()
            self.separator = _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), raw) or "\t"
            return
        name, _, rest = line.partition(self.separator)
        if name == "#fields":
            self.fields = rest.split(self.separator)
        elif name == "#path":
            self.log = rest.strip()
        elif name == "#unset_field":
            self.unset = rest
        elif name == "#empty_field":
            self.empty = rest
        elif name == "#set_separator":
            self.set_separator = rest

    def _json(self, line: str) -> Observation | None:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise ParseError(NAME, f"not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise ParseError(NAME, "not a JSON object")
        log = record.get("_path")
        return self._record(log if isinstance(log, str) else self.log, record, line)

    def _record(self, log: str, record: dict[str, object], line: str) -> Observation:
        stamp = record.get("ts")
        try:
            if isinstance(stamp, int | float) and not isinstance(stamp, bool):
                when = float(stamp)
            elif isinstance(stamp, str):
                when = (
                    float(stamp) if stamp.replace(".", "", 1).isdigit() else self.reader.iso(stamp)
                )
            else:
                raise ValueError(f"{stamp!r}")
        except ValueError as exc:
            raise ParseError(NAME, f"bad ts {exc}") from None
        if when != when or abs(when) > 1e11:
            raise ParseError(NAME, f"ts {stamp!r} out of range")
        pattern = log if log in LOGS else "other"
        return ZeekRecord(pattern, when, line, log, record)
