"""Reading the log's own timestamps fast, including syslog's year-less dates.

Detection windows run on log time, so ingesting yesterday's file gives the
same detections as tailing it live. Timestamps repeat line after line, so
every reader caches the text it last converted. Year-less syslog dates get
the year of a reference "now" (the watcher's clock), or the year before when
that would put them more than a day in the future: a file read on 2 January
that starts on 30 December lands in the right years.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from dtim.model import Clock

MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_CACHE_LIMIT = 4096
_FUTURE_SLACK = timedelta(days=1)
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_MICROSECOND = timedelta(microseconds=1)
CLF_WIDTH = len("20/Jan/2015:19:53:28 +0100")
"""Characters in a common-log-format time (``dd/Mon/yyyy:HH:MM:SS +zzzz``)."""


def _epoch(
    year: int, month: int, day: int, hour: int, minute: int, second: float, tz: tzinfo | None
) -> float:
    whole = int(second)
    micro = round((second - whole) * 1_000_000)
    if (
        isinstance(tz, timezone)
        and 1 < year < 9999
        and 0 <= hour < 24
        and 0 <= minute < 60
        and 0 <= whole < 60
        and 0 <= micro < 1_000_000
    ):
        # A fixed offset needs no datetime: the same arithmetic as timestamp(), in
        # integer microseconds divided once, so the very same float, at a third of the cost.
        days = date(year, month, day).toordinal() - _EPOCH_DAY  # checks the date
        offset = tz.utcoffset(None)
        seconds = days * 86400 + hour * 3600 + minute * 60 + whole
        return (seconds * 1_000_000 + micro - offset // _MICROSECOND) / 1_000_000
    moment = datetime(year, month, day, hour, minute, whole, micro, tzinfo=tz)
    return moment.timestamp()


def _clf_clock(text: str) -> int | None:
    """Seconds into the day of a CLF stamp of the exact ``dd/Mon/yyyy:HH:MM:SS +zzzz``
    layout in ASCII digits, or None for any other text (left to the general reader)."""
    if (
        len(text) != CLF_WIDTH
        or text[11] != ":"
        or text[14] != ":"
        or text[17] != ":"
        or text[20] != " "
        or not text.isascii()
    ):
        return None
    hour, minute, second = text[12:14], text[15:17], text[18:20]
    if not (hour + minute + second).isdigit():
        return None
    hours, minutes, seconds = int(hour), int(minute), int(second)
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    return hours * 3600 + minutes * 60 + seconds


class TimeReader:
    """Converts the timestamp formats of the supported logs to epoch seconds.

    Args:
        clock: its ``now`` is the reference for syslog years (read on each cache miss).
        tz: zone of timestamps that carry none; None means the machine's local zone.

    Every method raises ``ValueError`` on text that is not a valid timestamp;
    parsers turn that into ``ParseError``.
    """

    def __init__(self, clock: Clock, tz: tzinfo | None = None) -> None:
        self.tz = tz
        self.clock = clock
        self.cache: dict[str, float] = {}
        self._days: dict[str, float] = {}  # CLF "dd/Mon/yyyy: +zzzz" -> its midnight

    def _remember(self, text: str, value: float) -> float:
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        self.cache[text] = value
        return value

    def syslog(self, text: str) -> float:
        """``Sep 30 10:09:23`` (day may be space-padded, seconds may have a fraction)."""
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        parts = text.split()
        if len(parts) != 3:
            raise ValueError(f"not a syslog date: {text!r}")
        month = MONTHS[parts[0][:3].lower()]
        day = int(parts[1])
        hour, minute, second = _clock(parts[2])
        now = self.clock.now()
        reference = now.astimezone(self.tz) if self.tz is not None else now.astimezone()
        limit = now.timestamp() + _FUTURE_SLACK.total_seconds()
        for year in range(reference.year, reference.year - 5, -1):
            try:
                value = _epoch(year, month, day, hour, minute, second, self.tz)
            except ValueError:
                continue  # 29 February outside a leap year: try an earlier year
            if value <= limit:
                return self._remember(text, value)
        raise ValueError(f"no year makes {text!r} a valid past date")

    def iso(self, text: str) -> float:
        """ISO 8601 / RFC 3339, with ``Z``, ``+0200`` or ``+02:00``; naive means ``tz``."""
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        raw = text.strip()
        if raw.endswith(("Z", "z")):
            raw = raw[:-1] + "+00:00"
        elif len(raw) > 5 and raw[-5] in "+-" and raw[-4:].isdigit() and raw[-3] != ":":
            raw = raw[:-2] + ":" + raw[-2:]
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            value = (
                moment.replace(tzinfo=self.tz).timestamp()
                if self.tz is not None
                else moment.timestamp()
            )
        else:
            value = moment.timestamp()
        return self._remember(text, value)

    def clf(self, text: str) -> float:
        """Common log format ``20/Jan/2015:19:53:28 +0100``."""
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        clock = _clf_clock(text)
        if clock is not None:
            # Each second of a busy log is a new text, but its day and zone are not: the
            # day's start is converted once, and adding whole seconds to it gives the
            # very float _epoch would (both are whole numbers of seconds).
            day = text[:12] + text[20:]
            start = self._days.get(day)
            if start is None:
                if len(self._days) >= _CACHE_LIMIT:
                    self._days.clear()
                start = self._days[day] = self._clf_parts(f"{text[:12]}00:00:00{text[20:]}")
            return self._remember(text, start + clock)
        return self._remember(text, self._clf_parts(text))

    def _clf_parts(self, text: str) -> float:
        stamp, _, offset = text.partition(" ")
        day, month, rest = stamp.split("/", 2)
        year, hour, minute, second = rest.split(":")
        zone: tzinfo | None = self.tz
        if offset:
            sign = -1 if offset[0] == "-" else 1
            if len(offset) != 5 or offset[0] not in "+-" or not offset[1:].isdigit():
                raise ValueError(f"bad zone offset {offset!r}")
            zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        return _epoch(
            int(year), MONTHS[month.lower()], int(day), int(hour), int(minute), float(second), zone
        )

    def slashed(self, text: str) -> float:
        """nginx error log ``2015/01/21 10:56:10`` (local time)."""
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        date, _, clock = text.partition(" ")
        year, month, day = date.split("/")
        hour, minute, second = _clock(clock)
        return self._remember(
            text, _epoch(int(year), int(month), int(day), hour, minute, second, self.tz)
        )

    def ctime(self, text: str) -> float:
        """``Wed Jul 17 23:20:45 2013`` or ``Sat Jul 20 21:34:49.453232 2013`` (Apache, clamd)."""
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(f"not a ctime date: {text!r}")
        hour, minute, second = _clock(parts[3])
        value = _epoch(
            int(parts[4]),
            MONTHS[parts[1][:3].lower()],
            int(parts[2]),
            hour,
            minute,
            second,
            self.tz,
        )
        return self._remember(text, value)

    def dashed(self, text: str) -> float:
        """fail2ban ``2006-02-13 15:52:30,388`` (local time)."""
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        date, _, clock = text.partition(" ")
        year, month, day = date.split("-")
        hour, minute, second = _clock(clock.replace(",", "."))
        return self._remember(
            text, _epoch(int(year), int(month), int(day), hour, minute, second, self.tz)
        )


def _clock(text: str) -> tuple[int, int, float]:
    hour, minute, second = text.split(":")
    seconds = float(second)
    if not (0 <= int(hour) < 24 and 0 <= int(minute) < 60 and 0 <= seconds < 61):
        raise ValueError(f"bad time of day {text!r}")
    return int(hour), int(minute), min(seconds, 59.999999)


def to_datetime(epoch: float) -> datetime:
    """Epoch seconds to an aware UTC datetime."""
    return datetime.fromtimestamp(epoch, UTC)
