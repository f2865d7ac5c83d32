"""Aging: confidence decays with the time since the last sighting; pure functions only."""

from dtim.aging.curve import score, whole
from dtim.aging.model import (
    DEFAULT_DELTA,
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_MODEL_NAME,
    FALLBACK_LIFETIME_DAYS,
    DecayModel,
    DecayModels,
)
from dtim.aging.verdict import (
    AnalystVerdict,
    Verdict,
    current_confidence,
    decayed,
    expired_on_arrival,
)

__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_LIFETIME_DAYS",
    "DEFAULT_MODEL_NAME",
    "FALLBACK_LIFETIME_DAYS",
    "AnalystVerdict",
    "DecayModel",
    "DecayModels",
    "Verdict",
    "current_confidence",
    "decayed",
    "expired_on_arrival",
    "score",
    "whole",
]
