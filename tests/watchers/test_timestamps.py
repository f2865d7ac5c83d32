"""TimeReader.clf: the day-start shortcut gives exactly what strptime gives, or refuses alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtim.model import FakeClock
from dtim.watchers.timestamps import TimeReader

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def reference(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").timestamp()
    except ValueError:
        return None


def read(reader: TimeReader, text: str) -> float | None:
    try:
        return reader.clf(text)
    except (ValueError, KeyError):
        return None


stamps = st.builds(
    "{:02d}/{}/{:04d}:{:02d}:{:02d}:{:02d} {}{:02d}{:02d}".format,
    st.integers(0, 32),
    st.sampled_from(MONTHS),
    st.integers(1971, 2099),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from("+-"),
    st.integers(0, 14),
    st.sampled_from((0, 30, 45)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(stamps, min_size=1, max_size=20))
def test_clf_matches_strptime_for_every_stamp_of_a_day(texts: list[str]) -> None:
    # One reader for the whole list, so later stamps of a day take the cached day start.
    reader = TimeReader(FakeClock(datetime(2026, 3, 5, tzinfo=UTC)), UTC)
    for text in texts:
        assert read(reader, text) == reference(text), text


@pytest.mark.parametrize(
    "text",
    [
        "29/Feb/2025:10:00:00 +0000",  # no such day, even once its midnight is cached
        "28/Feb/2025:24:00:00 +0000",
        "28/Feb/2025:10:60:00 +0000",
        "28/Feb/2025:10:00:60 +0000",
        "28/Feb/2025:10:00:00 +00x0",
        "28/Foo/2025:10:00:00 +0000",
    ],
)
def test_clf_refuses_what_strptime_refuses(text: str) -> None:
    reader = TimeReader(FakeClock(datetime(2026, 3, 5, tzinfo=UTC)), UTC)
    reader.clf("28/Feb/2025:09:00:00 +0000")  # the day's start is now known
    with pytest.raises((ValueError, KeyError)):
        reader.clf(text)


def test_clf_reads_other_widths_through_the_general_path() -> None:
    reader = TimeReader(FakeClock(datetime(2026, 3, 5, tzinfo=UTC)), UTC)
    assert (
        reader.clf("5/Mar/2026:10:00:00.5 +0000")
        == datetime(2026, 3, 5, 10, 0, 0, 500000, tzinfo=UTC).timestamp()
    )
