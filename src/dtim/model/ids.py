"""Deterministic identifiers: the same indicator has the same id on every node."""

from __future__ import annotations

import hashlib
import uuid
from typing import NewType

IndicatorId = NewType("IndicatorId", str)
PeerId = NewType("PeerId", str)

DTIM_NAMESPACE = uuid.UUID("6f1c2a9e-4d3b-5e8f-9a7c-0d2e4b6a8c1f")
"""Namespace of every indicator id; never change it, or ids stop matching across nodes."""


_NAMESPACE_BYTES = DTIM_NAMESPACE.bytes


def indicator_id(type_: str, normalized_value: str) -> IndicatorId:
    """``uuid5(DTIM_NAMESPACE, "type:value")`` of an already normalised value."""
    # RFC 4122 section 4.3 by hand, as uuid.uuid5 does it, without building UUID objects
    # (a third of the cost of a watcher's sighting went there).
    digest = bytearray(
        hashlib.sha1(  # nosec B324  # name-based UUIDv5 is defined on SHA-1
            _NAMESPACE_BYTES + f"{type_}:{normalized_value}".encode(), usedforsecurity=False
        ).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return IndicatorId(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")
