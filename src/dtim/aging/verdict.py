"""Analyst verdicts, which decay never overrides, and the arrival check.

A verdict is a person's decision about one indicator. ``confirmed`` pins the
confidence the analyst chose for as long as the verdict stands;
``false_positive`` and ``revoked`` force it to zero. Decay applies only when
there is no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dtim.aging.model import DecayModel
from dtim.errors import ValidationError
from dtim.model.clock import utc
from dtim.model.indicator import Indicator, validate_confidence


class Verdict(StrEnum):
    """What an analyst decided about an indicator."""

    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"
    REVOKED = "revoked"

    @classmethod
    def parse(cls, raw: str) -> Verdict:
        """Read a verdict name (``false-positive`` is accepted too).

        Raises:
            ValidationError: unknown verdict.
        """
        try:
            return cls(raw.strip().lower().replace("-", "_"))
        except ValueError:
            choices = ", ".join(v.value for v in cls)
            raise ValidationError(
                "verdict", f"unknown verdict {raw!r} (expected one of {choices})"
            ) from None

    @property
    def suppresses(self) -> bool:
        """True for verdicts that take the indicator out of every export."""
        return self is not Verdict.CONFIRMED


@dataclass(frozen=True, slots=True)
class AnalystVerdict:
    """A verdict with the confidence a ``confirmed`` verdict pins (ignored otherwise)."""

    verdict: Verdict
    confidence: int = 100

    def __post_init__(self) -> None:
        validate_confidence(self.confidence)


def current_confidence(
    base: int,
    type_: str,
    last_seen: datetime,
    now: datetime,
    model: DecayModel,
    verdict: AnalystVerdict | None = None,
) -> int:
    """The confidence to show and export right now.

    Args:
        base: confidence at the last sighting.
        type_: the indicator type (selects the lifetime).
        last_seen: the last sighting anywhere in the mesh; a new sighting resets the clock.
        now: the current time.
        model: the decay model the indicator names.
        verdict: an analyst's decision, which decay never overrides.

    Returns:
        0-100; 0 means expired (or suppressed by a verdict).
    """
    if verdict is not None:
        return 0 if verdict.verdict.suppresses else verdict.confidence
    return model.confidence(base, type_, last_seen, now)


def decayed(
    indicator: Indicator, model: DecayModel, now: datetime, verdict: AnalystVerdict | None = None
) -> int:
    """:func:`current_confidence` of a stored indicator."""
    return current_confidence(
        indicator.confidence, indicator.type, indicator.last_seen, now, model, verdict
    )


def expired_on_arrival(
    type_: str,
    last_seen: datetime,
    now: datetime,
    model: DecayModel,
    expires: datetime | None = None,
) -> bool:
    """True when a report arriving now is already dead and must be refused.

    A report is dead when the receiver's own curve says so or when the
    expiry it carries has passed. Refusing these is what keeps purged
    indicators from coming back from a lagging peer.
    """
    if expires is not None and utc(now) >= utc(expires):
        return True
    return model.expired(type_, last_seen, now)
