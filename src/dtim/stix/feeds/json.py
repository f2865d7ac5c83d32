"""The privacy filter's JSON form, as one JSON array with an object per line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO

import orjson


class JsonWriter:
    """Writes ``[`` + one shared indicator per line + ``]``: valid JSON, streamable line by line."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._sep = b"[\n"
        self.count = 0

    def write(self, shared: Mapping[str, object]) -> None:
        """Append one shared indicator."""
        self._out.write(self._sep + orjson.dumps(dict(shared), default=str))
        self._sep = b",\n"
        self.count += 1

    def close(self) -> None:
        """Close the array."""
        self._out.write(b"[]\n" if self.count == 0 else b"\n]\n")
