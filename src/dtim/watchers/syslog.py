"""Splitting syslog lines (RFC 3164 with or without year, RFC 5424-ish ISO stamps)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dtim.watchers.timestamps import TimeReader

_BSD = re.compile(
    r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?) (\S+) ([^:\[\s]+)(?:\[\d+\])?: ?(.*)$", re.S
)
_ISO = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
    r"(\S+) ([^:\[\s]+)(?:\[\d+\])?: ?(.*)$",
    re.S,
)


@dataclass(frozen=True, slots=True)
class SyslogLine:
    """The parts of one syslog line."""

    time: float
    host: str
    program: str
    message: str


def split_syslog(line: str, reader: TimeReader) -> SyslogLine | None:
    """Split a syslog line, or return None when it is not one.

    Raises:
        ValueError: the timestamp looks like one but is not a valid date.
    """
    match = _BSD.match(line)
    if match is not None:
        return SyslogLine(
            reader.syslog(match.group(1)), match.group(2), match.group(3), match.group(4)
        )
    match = _ISO.match(line)
    if match is not None:
        return SyslogLine(
            reader.iso(match.group(1)), match.group(2), match.group(3), match.group(4)
        )
    return None
