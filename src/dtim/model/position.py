"""Where a watcher stopped reading a file, committed together with what it read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TailPosition:
    """A file position that survives restarts and rotations.

    Attributes:
        watcher: the watcher name (``ufw`` ...).
        path: the path being followed, as configured.
        inode: inode of the file the offset refers to.
        offset: bytes consumed (always at a line boundary).
        fingerprint: hex digest of the file's first bytes (tells a replaced file from the same one).
    """

    watcher: str
    path: str
    inode: int
    offset: int
    fingerprint: str
