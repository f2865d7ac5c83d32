"""Time as a dependency, so tests and simulations can drive it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from dtim.errors import ValidationError


class Clock(Protocol):
    """Anything that tells the current UTC time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        """The current fake time."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward and return the new time."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (must be timezone-aware)."""
        self._now = moment


def utc(moment: datetime) -> datetime:
    """Treat naive datetimes as UTC and convert aware ones to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """RFC 3339 with a ``Z`` suffix and millisecond precision, as STIX writes it."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc(moment).microsecond // 1000:03d}Z"


def parse_time(raw: str, field: str = "timestamp") -> datetime:
    """Read an RFC 3339 / ISO 8601 timestamp into an aware UTC datetime.

    Raises:
        ValidationError: the text is not a timestamp.
    """
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValidationError(field, f"{raw!r} is not an ISO 8601 timestamp") from None
