"""In-process simulation of the mesh: real merge, reconciliation and routing, virtual time."""

from __future__ import annotations

import random


def seeded(seed: float | int) -> random.Random:
    """A reproducible generator: simulations must replay exactly from their seed."""
    return random.Random(seed)  # noqa: S311  # nosec B311  # not for secrets: reproducible experiments
