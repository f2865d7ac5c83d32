"""One value per line: the blocklist firewalls poll (pfSense/OPNsense URL tables, nftables sets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO


class TextWriter:
    """Writes each indicator's value on its own line, nothing else.

    Values are already normalised and cannot contain a line break (the model
    refuses white space inside values), so a line is always one value.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.count = 0

    def write(self, shared: Mapping[str, object]) -> None:
        """Append one value."""
        self._out.write(str(shared["value"]).encode() + b"\n")
        self.count += 1

    def close(self) -> None:
        """Nothing to finish: the list is complete after its last line."""
