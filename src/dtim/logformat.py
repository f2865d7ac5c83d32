"""Process logs on standard error: plain text for people, or one JSON object per line for shippers.

These are the operational logs (``logging.format``), not the encrypted audit
log. JSON lines carry ``time`` (UTC, RFC 3339), ``level``, ``logger`` and
``message``, then any ``extra={...}`` fields a caller passed, then
``exception`` when there is one. Values under secret-looking names are
masked, and credentials inside URLs (``scheme://user:password@host``) are
cut out of every string, so a database URL never reaches a log shipper whole.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("httpx", "httpcore", "alembic")
"""Libraries that narrate every request or migration step at INFO."""

_SECRET_NAME = re.compile(
    r"(?i)pass(word|phrase)?|secret|token|api_?key|authorization|cookie|private"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
_MASK = "***"
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def scrub(text: str) -> str:
    """``text`` with the user:password part of any URL replaced by ``***``."""
    return _URL_CREDENTIALS.sub(rf"\1{_MASK}@", text)


def _field(name: str, value: Any) -> Any:
    if _SECRET_NAME.search(name):
        return _MASK
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (no newline inside, whatever the message holds)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as compact JSON."""
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_") and name not in document:
                document[name] = _field(name, value)
        if record.exc_info:
            document["exception"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(document).decode()


class TextFormatter(logging.Formatter):
    """The classic one-line text format, with URL credentials cut out."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record as text."""
        return scrub(super().format(record))


def configure_logging(fmt: str = "text", level: str = "info") -> None:
    """Send every log record to standard error in ``fmt``; replaces handlers set before.

    Args:
        fmt: ``text`` or ``json``.
        level: the least severe level written (``debug`` … ``error``).

    Raises:
        ValueError: an unknown format or level.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (expected one of {', '.join(FORMATS)})")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
