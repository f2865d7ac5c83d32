"""The decay curve MISP and OpenCTI both use: ``base * (1 - (t/L)^(1/δ))``.

``t`` is the time since the last sighting, ``L`` the lifetime of the
indicator's type and ``δ`` the shape: δ > 1 keeps confidence high for most of
the lifetime and drops it steeply at the end (δ = 2 is the default), δ = 1 is
a straight line, δ < 1 drops fast and then lingers.
"""

from __future__ import annotations

import math

from dtim.errors import ValidationError


def score(base: float, elapsed: float, lifetime: float, delta: float) -> float:
    """Decayed confidence after ``elapsed`` seconds of a ``lifetime``-second life.

    Args:
        base: the confidence at the last sighting, 0-100.
        elapsed: seconds since the last sighting; a negative value (a sighting
            stamped slightly in the future by a skewed clock) counts as zero.
        lifetime: seconds after which the score reaches zero (L > 0).
        delta: the curve's shape (δ > 0).

    Returns:
        A float in ``[0, base]``; exactly 0.0 from ``elapsed >= lifetime`` on.

    Raises:
        ValidationError: base outside 0-100, or a non-positive lifetime or delta.
    """
    if not 0 <= base <= 100 or math.isnan(base):
        raise ValidationError("confidence", f"base confidence must be 0-100, got {base!r}")
    if not lifetime > 0:
        raise ValidationError("aging.lifetime", f"must be positive, got {lifetime!r}")
    if not delta > 0:
        raise ValidationError("aging.delta", f"must be positive, got {delta!r}")
    if elapsed >= lifetime:
        return 0.0
    if elapsed <= 0:
        return float(base)
    fraction: float = (elapsed / lifetime) ** (1.0 / delta)
    return max(0.0, base * (1.0 - fraction))


def whole(value: float) -> int:
    """Round a decayed score up to a whole confidence.

    Rounding up keeps the displayed confidence above zero until the curve
    itself reaches zero, so "confidence 0" and "expired" mean the same thing
    on every node (a tiny tolerance absorbs floating-point noise).
    """
    return max(0, math.ceil(value - 1e-9))
