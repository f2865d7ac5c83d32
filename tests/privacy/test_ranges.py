"""Sorted integer ranges: innermost wins, overlap tests, address parsing."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.errors import ValidationError
from dtim.privacy.ranges import (
    IPV4_BITS,
    RangeTable,
    cidr_bounds,
    ipv4_to_int,
    ipv6_to_int,
    parse_network,
)


def test_innermost_interval_labels_the_overlap() -> None:
    table = RangeTable([(0, 99, "outer"), (10, 19, "inner"), (15, 16, "core")], bits=128)
    assert table.find(5) == "outer"
    assert table.find(12) == "inner"
    assert table.find(15) == "core"
    assert table.find(17) == "inner"
    assert table.find(50) == "outer"
    assert table.find(100) is None
    assert len(table) == 5


def test_equal_sizes_go_to_the_first_given() -> None:
    table = RangeTable([(0, 9, "first"), (0, 9, "second")], bits=128)
    assert table.find(3) == "first"


def test_adjacent_segments_with_one_label_merge() -> None:
    label = "same"
    table = RangeTable([(0, 9, label), (10, 19, label), (30, 39, "other")], bits=128)
    assert len(table) == 2
    assert table.find(15) == "same"
    assert table.find(25) is None


def test_empty_table_finds_nothing() -> None:
    assert RangeTable([], bits=IPV4_BITS).find(5) is None
    assert RangeTable([], bits=128).overlapping(0, 10) is None
    assert len(RangeTable([])) == 0


def test_overlapping_uses_the_last_segment_before_the_end() -> None:
    table = RangeTable([(10, 19, "a"), (40, 49, "b")], bits=128)
    assert table.overlapping(0, 9) is None
    assert table.overlapping(0, 10) == "a"
    assert table.overlapping(20, 39) is None
    assert table.overlapping(45, 100) == "b"
    assert table.overlapping(0, 1000) == "b"


def test_ipv4_index_handles_segments_that_start_in_an_earlier_block() -> None:
    start, end = (
        int(ipaddress.IPv4Address("10.0.0.0")),
        int(ipaddress.IPv4Address("10.255.255.255")),
    )
    table = RangeTable([(start, end, "ten")], bits=IPV4_BITS)
    assert table.find(int(ipaddress.IPv4Address("10.200.1.1"))) == "ten"
    assert table.find(int(ipaddress.IPv4Address("11.0.0.0"))) is None
    assert table.find(int(ipaddress.IPv4Address("9.255.255.255"))) is None
    assert table.find(2**32 - 1) is None
    assert table.find(0) is None


intervals = st.lists(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**16)).map(
        lambda pair: (pair[0], min(2**32 - 1, pair[0] + pair[1]))
    ),
    max_size=30,
)


@given(intervals, st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=30), st.booleans())
def test_find_agrees_with_a_naive_innermost_scan(
    spans: list[tuple[int, int]], points: list[int], indexed: bool
) -> None:
    labelled = [(start, end, f"r{n}") for n, (start, end) in enumerate(spans)]
    table = RangeTable(labelled, bits=IPV4_BITS if indexed else 128)
    for point in [*points, *(s for s, _ in spans), *(e for _, e in spans)]:
        covering = [
            (end - start, n, label)
            for n, (start, end, label) in enumerate(labelled)
            if start <= point <= end
        ]
        expected = min(covering)[2] if covering else None
        assert table.find(point) == expected


@given(intervals, st.integers(0, 2**32 - 1), st.integers(0, 2**20))
def test_overlapping_agrees_with_a_naive_scan(
    spans: list[tuple[int, int]], start: int, width: int
) -> None:
    end = min(2**32 - 1, start + width)
    table = RangeTable([(s, e, "x") for s, e in spans], bits=IPV4_BITS)
    expected = any(s <= end and e >= start for s, e in spans)
    assert (table.overlapping(start, end) is not None) == expected


def test_parse_network_forms() -> None:
    assert parse_network("10.0.0.0/8") == (4, 10 << 24, (11 << 24) - 1)
    single = int(ipaddress.IPv4Address("192.0.2.1"))
    assert parse_network(" 192.0.2.1 ") == (4, single, single)
    assert parse_network("10.0.0.1/8")[1] == 10 << 24  # host bits are forgiven in lists
    assert parse_network("4.2.2.1-4.2.2.6")[2] - parse_network("4.2.2.1-4.2.2.6")[1] == 5
    assert parse_network("2001:db8::/32")[0] == 6


@pytest.mark.parametrize(
    "bad", ["nonsense", "10.0.0.9-10.0.0.1", "10.0.0.1-::1", "1.2.3.4-x", "300.1.1.1"]
)
def test_parse_network_rejects(bad: str) -> None:
    with pytest.raises(ValidationError):
        parse_network(bad)


def test_address_conversions() -> None:
    assert ipv4_to_int("1.2.3.4") == 0x01020304
    assert ipv4_to_int("::1") is None
    assert ipv6_to_int("::1") == 1
    assert ipv6_to_int("1.2.3.4") is None


def test_cidr_bounds() -> None:
    assert cidr_bounds("10.0.0.0/8") == (4, 10 << 24, (11 << 24) - 1)
    assert cidr_bounds("2001:db8::/32") == (6, 0x20010DB8 << 96, ((0x20010DB8 + 1) << 96) - 1)
    assert cidr_bounds("10.0.0.5/32") == (4, (10 << 24) + 5, (10 << 24) + 5)
    for bad in ("10.0.0.0", "10.0.0.0/x", "10.0.0.0/33", "nonsense/8", "::/129"):
        assert cidr_bounds(bad) is None
