"""Replay protection: remembering request nonces for as long as their signatures are valid."""

from __future__ import annotations

import heapq
from typing import Protocol

from dtim.errors import SignatureError


class NonceCache(Protocol):
    """Remembers (key id, nonce) pairs until a time; a store can back it for several processes."""

    async def remember(self, key_id: str, nonce: str, *, now: int, until: int) -> bool:
        """Record the pair until ``until`` (unix seconds); False if it is already there."""
        ...


class MemoryNonceCache:
    """A bounded in-process :class:`NonceCache`.

    Entries expire once their signature could no longer pass the time window, so
    the cache holds at most one window's requests. When it is full of live
    entries it refuses new requests (fail closed) rather than forget nonces,
    which would reopen a replay.
    """

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._max = max_entries
        self._seen: dict[tuple[str, str], int] = {}
        self._expiry: list[tuple[int, str, str]] = []

    def __len__(self) -> int:
        return len(self._seen)

    async def remember(self, key_id: str, nonce: str, *, now: int, until: int) -> bool:
        """Record the pair; False when it was seen before and has not expired.

        Raises:
            SignatureError: the cache is full of live entries.
        """
        while self._expiry and self._expiry[0][0] < now:
            expired, old_key, old_nonce = heapq.heappop(self._expiry)
            if self._seen.get((old_key, old_nonce)) == expired:
                del self._seen[(old_key, old_nonce)]
        pair = (key_id, nonce)
        if pair in self._seen:
            return False
        if len(self._seen) >= self._max:
            raise SignatureError("replay cache full: too many requests in the time window")
        self._seen[pair] = until
        heapq.heappush(self._expiry, (until, key_id, nonce))
        return True
