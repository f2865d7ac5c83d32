"""Sorted item sets with range fingerprints: what range-based reconciliation runs over.

Items are sorted by their key ``(timestamp, id)``: the coarsened time bucket
(Unix seconds) and the 32-byte item id. A *bound* has the same shape, but its
id part may be a short prefix; a key is inside ``[lo, hi)`` when
``lo <= key < hi`` in ordinary tuple order (a shorter prefix sorts first, so
it behaves as if padded with zero bytes).

The fingerprint of a range is the pair ``(count, sum of ids mod 2**256)``,
ids read as little-endian integers, as in Negentropy. Sums add, so the
fingerprint of any sub-range comes from prefix sums (or an index) without
re-reading the items, and two layered sets add up too.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

Key = tuple[int, bytes]
"""``(timestamp, id)`` of an item, or a bound (whose id part may be a prefix)."""

INFINITY = 2**63
"""Timestamp of the bound after every item."""
MIN_BOUND: Key = (0, b"")
MAX_BOUND: Key = (INFINITY, b"")
MODULUS = 2**256
ID_LENGTH = 32


def id_value(item_id: bytes) -> int:
    """An id as the integer that fingerprints add up."""
    return int.from_bytes(item_id, "little")


@dataclass(frozen=True, slots=True)
class Summary:
    """Fingerprint of a range: how many items and the sum of their ids mod 2**256."""

    count: int
    total: int

    def __add__(self, other: Summary) -> Summary:
        return Summary(self.count + other.count, (self.total + other.total) % MODULUS)


EMPTY = Summary(0, 0)


class ItemSource(Protocol):
    """A sorted set of item keys that answers range queries.

    A SQL table with an index on ``(time_bucket, hash)`` answers both: a
    range is ``WHERE (time_bucket, hash) >= lo AND (time_bucket, hash) < hi``.
    """

    def summary(self, lo: Key, hi: Key) -> Summary:
        """Count and id sum of the items in ``[lo, hi)``."""
        ...

    def keys(self, lo: Key, hi: Key, offset: int = 0, limit: int | None = None) -> Iterator[Key]:
        """Keys in ``[lo, hi)`` in order, skipping ``offset``, at most ``limit`` of them."""
        ...


def summarize(keys: Iterable[Key]) -> Summary:
    """Fingerprint of some keys by reading them all (for sources without an index)."""
    count = 0
    total = 0
    for _, item_id in keys:
        count += 1
        total += id_value(item_id)
    return Summary(count, total % MODULUS)


def separator(before: Key, after: Key) -> Key:
    """The shortest bound ``b`` with ``before < b <= after`` (``before < after``).

    Different timestamps need no id at all; equal ones need the common id
    prefix plus one byte.
    """
    if after[0] != before[0]:
        return (after[0], b"")
    shared = 0
    for left, right in zip(before[1], after[1], strict=False):
        if left != right:
            break
        shared += 1
    return (after[0], after[1][: shared + 1])


class SortedItems:
    """An in-memory :class:`ItemSource`: a sorted list with lazily rebuilt prefix sums."""

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self._keys: list[Key] = sorted(set(keys))
        self._values: list[int] = [id_value(i) for _, i in self._keys]
        self._prefix: list[int] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple):
            return False
        index = bisect.bisect_left(self._keys, key)
        return index < len(self._keys) and self._keys[index] == key

    def add(self, key: Key) -> bool:
        """Insert a key; False when it was already there."""
        index = bisect.bisect_left(self._keys, key)
        if index < len(self._keys) and self._keys[index] == key:
            return False
        self._keys.insert(index, key)
        self._values.insert(index, id_value(key[1]))
        self._prefix = None
        return True

    def discard(self, key: Key) -> bool:
        """Remove a key; False when it was not there."""
        index = bisect.bisect_left(self._keys, key)
        if index < len(self._keys) and self._keys[index] == key:
            del self._keys[index]
            del self._values[index]
            self._prefix = None
            return True
        return False

    def filtered(self, keep: Callable[[Key], bool]) -> SortedItems:
        """A copy holding only the keys ``keep`` accepts (a per-peer view)."""
        view = SortedItems()
        chosen = [
            (key, value) for key, value in zip(self._keys, self._values, strict=True) if keep(key)
        ]
        view._keys = [key for key, _ in chosen]
        view._values = [value for _, value in chosen]
        return view

    def _span(self, lo: Key, hi: Key) -> tuple[int, int]:
        start = bisect.bisect_left(self._keys, lo)
        stop = bisect.bisect_left(self._keys, hi, lo=start)
        return start, stop

    def summary(self, lo: Key, hi: Key) -> Summary:
        """Count and id sum of ``[lo, hi)``: O(log n), after an O(n) rebuild following changes."""
        if self._prefix is None:
            self._prefix = [0, *itertools.accumulate(self._values)]
        start, stop = self._span(lo, hi)
        return Summary(stop - start, (self._prefix[stop] - self._prefix[start]) % MODULUS)

    def keys(self, lo: Key, hi: Key, offset: int = 0, limit: int | None = None) -> Iterator[Key]:
        """Keys of ``[lo, hi)`` from ``offset``, at most ``limit``."""
        start, stop = self._span(lo, hi)
        start += offset
        if limit is not None:
            stop = min(stop, start + limit)
        return iter(self._keys[start:stop])
