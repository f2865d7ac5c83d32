"""Sorted item sets, bounds and range fingerprints."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from dtim.gossip.ranges import (
    EMPTY,
    MAX_BOUND,
    MIN_BOUND,
    SortedItems,
    Summary,
    id_value,
    separator,
    summarize,
)

ids = st.binary(min_size=32, max_size=32)
keys = st.tuples(st.integers(0, 50), ids)


@given(st.lists(keys, min_size=2, max_size=40, unique=True))
def test_separator_splits_neighbours_exactly(raw: list[tuple[int, bytes]]) -> None:
    ordered = sorted(raw)
    for before, after in itertools.pairwise(ordered):
        bound = separator(before, after)
        assert before < bound <= after
        assert len(bound[1]) <= 32


@given(st.lists(keys, max_size=60), keys, keys)
def test_summary_matches_reading_the_range(
    raw: list[tuple[int, bytes]], a: tuple[int, bytes], b: tuple[int, bytes]
) -> None:
    items = SortedItems(raw)
    lo, hi = min(a, b), max(a, b)
    inside = [k for k in sorted(set(raw)) if lo <= k < hi]
    assert items.summary(lo, hi) == summarize(inside)
    assert list(items.keys(lo, hi)) == inside
    assert list(items.keys(lo, hi, offset=1, limit=2)) == inside[1:3]
    assert items.summary(MIN_BOUND, MAX_BOUND) == items.summary(MIN_BOUND, lo) + items.summary(
        lo, MAX_BOUND
    )


def test_add_discard_contains_and_filtered_views() -> None:
    first, second = (5, b"\x01" * 32), (5, b"\x02" * 32)
    items = SortedItems([second])
    assert items.add(first)
    assert not items.add(first)
    assert first in items
    assert (9, b"") not in items
    assert "nope" not in items
    assert items.summary(MIN_BOUND, MAX_BOUND) == Summary(
        2, id_value(first[1]) + id_value(second[1])
    )
    view = items.filtered(lambda key: key != first)
    assert len(view) == 1
    assert view.summary(MIN_BOUND, MAX_BOUND) == summarize([second])
    assert items.discard(first)
    assert not items.discard(first)
    assert len(items) == 1
    assert items.summary(MIN_BOUND, (5, b"\x02")) == EMPTY
