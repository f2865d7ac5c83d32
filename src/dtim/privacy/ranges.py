"""Sorted integer ranges searched with bisect: address-list lookups in O(log n).

Every network of every warninglist becomes an integer interval ``[start, end]``.
:class:`RangeTable` cuts the union of those intervals into disjoint, sorted
segments, each labelled with the *innermost* (smallest) interval covering it,
so a lookup is one :func:`bisect.bisect_right` over a list of ints, however
many networks there are (the benchmark uses 100,000).
"""

from __future__ import annotations

import heapq
import ipaddress
import socket
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Generic, TypeVar

from dtim.errors import ValidationError

T = TypeVar("T")

IPV4_BITS = 32
IPV6_BITS = 128
INDEX_BITS = 16


class RangeTable(Generic[T]):
    """Disjoint labelled segments built from possibly nested or overlapping intervals.

    Where intervals overlap, the smallest one labels the overlap; among equal
    sizes, the one given first wins (callers list their most important lists first).
    """

    __slots__ = ("_ends", "_index", "_labels", "_shift", "_starts")

    def __init__(self, intervals: Iterable[tuple[int, int, T]], bits: int = IPV6_BITS) -> None:
        items = sorted(
            ((start, end, order, label) for order, (start, end, label) in enumerate(intervals)),
            key=lambda item: item[0],
        )
        points = sorted({item[0] for item in items} | {item[1] + 1 for item in items})
        starts: list[int] = []
        ends: list[int] = []
        labels: list[T] = []
        active: list[tuple[int, int, int, int]] = []  # (size, order, end, index into items)
        cursor = 0
        for position, point in enumerate(points[:-1]):
            while cursor < len(items) and items[cursor][0] <= point:
                start, end, order, _ = items[cursor]
                heapq.heappush(active, (end - start, order, end, cursor))
                cursor += 1
            # Lazy deletion: only the top must be live, expired entries below surface later.
            while active and active[0][2] < point:
                heapq.heappop(active)
            if not active:
                continue
            label = items[active[0][3]][3]
            last = points[position + 1] - 1
            if labels and labels[-1] is label and ends[-1] + 1 == point:
                ends[-1] = last
            else:
                starts.append(point)
                ends.append(last)
                labels.append(label)
        self._labels = labels
        self._shift: int | None = None
        self._starts: Sequence[int] = starts
        self._ends: Sequence[int] = ends
        self._index: Sequence[int] = ()
        if bits <= IPV4_BITS:
            # For 32-bit spaces, a table of where each /16 begins narrows every bisect
            # to a handful of segments, and flat arrays (not lists of int objects)
            # keep the few memory reads of a lookup close together.
            # _index[p] = how many segments start below prefix p = first segment of prefix p.
            shift = bits - INDEX_BITS
            counts = [0] * ((1 << INDEX_BITS) + 1)
            for start in starts:
                counts[(start >> shift) + 1] += 1
            self._shift = shift
            self._index = array("Q", accumulate(counts))
            self._starts = array("Q", starts)
            self._ends = array("Q", ends)

    def __len__(self) -> int:
        """Number of disjoint segments."""
        return len(self._starts)

    def find(self, point: int) -> T | None:
        """The label of the innermost interval containing ``point``, or None.

        ``point`` must lie in the table's address space (0 to 2**bits - 1).
        """
        shift = self._shift
        if shift is None:
            index = bisect_right(self._starts, point) - 1
        else:
            prefix = point >> shift
            index = (
                bisect_right(self._starts, point, self._index[prefix], self._index[prefix + 1]) - 1
            )
        if index >= 0 and point <= self._ends[index]:
            return self._labels[index]
        return None

    def overlapping(self, start: int, end: int) -> T | None:
        """The label of some interval overlapping ``[start, end]``, or None.

        Segments are disjoint and sorted, so the last one starting at or before
        ``end`` has the greatest end of all candidates: one comparison decides.
        """
        index = bisect_right(self._starts, end) - 1
        if index >= 0 and self._ends[index] >= start:
            return self._labels[index]
        return None


def ipv4_to_int(text: str) -> int | None:
    """A dotted-quad IPv4 address as an int, or None when ``text`` is not one."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        return None


def ipv6_to_int(text: str) -> int | None:
    """An IPv6 address (no brackets, no zone) as an int, or None when ``text`` is not one."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except OSError:
        return None


def parse_network(text: str) -> tuple[int, int, int]:
    """Read an address, a CIDR network or a ``first-last`` range.

    Returns:
        ``(version, start, end)`` with ``start`` and ``end`` as integers.

    Raises:
        ValidationError: ``text`` is none of those, or the range is reversed
            or mixes address families.
    """
    raw = text.strip()
    if "-" in raw and "/" not in raw:
        first_raw, _, last_raw = raw.partition("-")
        try:
            first = ipaddress.ip_address(first_raw.strip())
            last = ipaddress.ip_address(last_raw.strip())
        except ValueError:
            raise ValidationError("network", f"{text!r} is not an address range") from None
        if first.version != last.version or int(last) < int(first):
            raise ValidationError("network", f"{text!r} is not an ascending range of one family")
        return first.version, int(first), int(last)
    try:
        network = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise ValidationError("network", f"{text!r} is not an IP address or network") from None
    return network.version, int(network.network_address), int(network.broadcast_address)


def cidr_bounds(value: str) -> tuple[int, int, int] | None:
    """Bounds of a normalised CIDR value (``10.0.0.0/8``), or None when it is malformed."""
    address, sep, length_raw = value.partition("/")
    if not sep or not length_raw.isdigit():
        return None
    length = int(length_raw)
    if ":" in address:
        start, bits = ipv6_to_int(address), IPV6_BITS
    else:
        start, bits = ipv4_to_int(address), IPV4_BITS
    if start is None or length > bits:
        return None
    host_bits = bits - length
    start = (start >> host_bits) << host_bits
    return (6 if bits == IPV6_BITS else 4), start, start | ((1 << host_bits) - 1)
