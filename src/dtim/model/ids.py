"""Deterministic identifiers: the same indicator has the same id on every node."""

from __future__ import annotations

import uuid
from typing import NewType

IndicatorId = NewType("IndicatorId", str)
PeerId = NewType("PeerId", str)

DTIM_NAMESPACE = uuid.UUID("6f1c2a9e-4d3b-5e8f-9a7c-0d2e4b6a8c1f")
"""Namespace of every indicator id; never change it, or ids stop matching across nodes."""


def indicator_id(type_: str, normalized_value: str) -> IndicatorId:
    """``uuid5(DTIM_NAMESPACE, "type:value")`` of an already normalised value."""
    return IndicatorId(str(uuid.uuid5(DTIM_NAMESPACE, f"{type_}:{normalized_value}")))
