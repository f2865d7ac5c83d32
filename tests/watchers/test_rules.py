"""Rule overrides, windows on log time, bounded state, and log timestamps (syslog years, zones)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dtim.errors import ConfigError
from dtim.model import FakeClock
from dtim.watchers.rules import Bucket, Rule, configure, parse_duration
from dtim.watchers.timestamps import TimeReader
from dtim.watchers.windows import Tracker

RULE = Rule("r", "test", 3, 60, 50, ("t",))


def test_overrides_apply_and_unknown_keys_fail_closed() -> None:
    rules, options = configure(
        "nginx_access",
        (RULE,),
        {"r": {"threshold": 5, "window": "2m", "bucket": "leaky"}, "format": "x"},
        {"format": "help"},
    )
    assert (rules["r"].threshold, rules["r"].window, rules["r"].bucket, options) == (
        5,
        120.0,
        Bucket.LEAKY,
        {"format": "x"},
    )
    with pytest.raises(ConfigError, match=r"watchers\.nginx_access\.nope"):
        configure("nginx_access", (RULE,), {"nope": 1}, {})
    with pytest.raises(ConfigError, match=r"watchers\.nginx_access\.r\.threshold"):
        configure("nginx_access", (RULE,), {"r": {"threshold": 0}}, {})
    with pytest.raises(ConfigError, match=r"\.r\.colour"):
        configure("nginx_access", (RULE,), {"r": {"colour": "red"}}, {})
    with pytest.raises(ConfigError):
        parse_duration("soon", "k")


def test_sliding_window_on_log_time() -> None:
    tracker = Tracker(RULE)
    assert tracker.hit("a", 0, "l1") is None
    assert tracker.hit("a", 50, "l2") is None
    assert tracker.hit("a", 200, "l3") is None  # the first two fell out of the 60 s window
    assert tracker.hit("a", 210, "l4") is None
    firing = tracker.hit("a", 220, "l5")
    assert firing is not None
    assert (firing.count, firing.first, firing.last) == (3, 200, 220)
    assert firing.lines[-1] == "l5"
    assert tracker.hit("a", 221, "l6") is None
    assert tracker.hit("a", 222, "l7") is None


def test_distinct_values_and_leaky_bucket() -> None:
    ports = Tracker(RULE, distinct=True)
    assert [ports.hit("a", t, "l", "22") for t in range(5)] == [None] * 5
    assert ports.hit("a", 6, "l", "23") is None
    firing = ports.hit("a", 7, "l", "80")
    assert firing is not None
    assert firing.values == ("22", "23", "80")
    leaky = Tracker(Rule("b", "t", 3, 30, 50, (), bucket=Bucket.LEAKY))
    assert [leaky.hit("k", t, "l") for t in (0, 40, 80)] == [
        None,
        None,
        None,
    ]  # drains faster than it fills
    assert leaky.hit("k", 81, "l") is None
    assert leaky.hit("k", 82, "l") is None
    assert leaky.hit("k", 83, "l") is not None


def test_state_is_bounded_and_expires() -> None:
    tracker = Tracker(RULE, max_keys=1000)
    for n in range(10_000):
        tracker.hit(f"10.0.{n // 256}.{n % 256}", float(n) / 100, "l")
    assert len(tracker) <= 1000
    tracker.hit("late", 10_000, "l")
    tracker.hit("later", 10_200, "l")
    assert len(tracker) <= 2  # everything older than the span is gone


def test_syslog_year_is_inferred_with_rollover() -> None:
    reader = TimeReader(FakeClock(datetime(2026, 1, 2, 12, tzinfo=UTC)), UTC)
    assert datetime.fromtimestamp(reader.syslog("Dec 31 23:59:59"), UTC).year == 2025
    assert datetime.fromtimestamp(reader.syslog("Jan  2 08:00:00"), UTC).year == 2026
    assert (
        datetime.fromtimestamp(reader.syslog("Feb 29 10:00:00"), UTC).year == 2024
    )  # last leap year in the past


def test_time_zones() -> None:
    paris = timezone(timedelta(hours=1))
    reader = TimeReader(FakeClock(datetime(2026, 6, 1, tzinfo=UTC)), paris)
    assert (
        reader.clf("20/Jan/2015:19:53:28 +0100")
        == datetime(2015, 1, 20, 18, 53, 28, tzinfo=UTC).timestamp()
    )
    assert (
        reader.slashed("2015/01/20 19:53:28")
        == datetime(2015, 1, 20, 18, 53, 28, tzinfo=UTC).timestamp()
    )
    assert (
        reader.iso("2011-08-12T14:52:57.716360+0200")
        == datetime(2011, 8, 12, 12, 52, 57, 716360, tzinfo=UTC).timestamp()
    )
    with pytest.raises(ValueError, match="bad time of day"):
        reader.ctime("Wed Jul 17 25:20:45 2013")
