"""Plain feed formats beside STIX: CSV, firewall text lists, JSON and MISP feed directories.

Every writer takes the privacy filter's JSON form of an indicator, one at a
time, and streams it out; every reader yields DTIM indicators one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class FeedWriter(Protocol):
    """Streams shared indicators into one export format."""

    count: int

    def write(self, shared: Mapping[str, object]) -> None:
        """Append one shared indicator."""
        ...

    def close(self) -> None:
        """Finish the output (footers, manifests); the underlying stream stays open."""
        ...
