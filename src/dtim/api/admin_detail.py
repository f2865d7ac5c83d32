"""The indicator detail view: decay curve, privacy explanations, history and local evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dtim.aging import DecayModel
from dtim.crypto.evidence import open_evidence
from dtim.crypto.keyring import Keyring
from dtim.errors import CryptoError
from dtim.model import Evidence, Indicator
from dtim.privacy import Destination, Explanation, PrivacyFilter, PrivacyLevel
from dtim.store import IndicatorEvent, Store

CURVE_POINTS = 48
EXAMPLE_PEER = "any-approved-peer"
"""The peer id used to explain what an ordinary approved peer (no groups) would get."""


@dataclass(frozen=True, slots=True)
class SightingView:
    """A local sighting with its evidence opened (or why it could not be)."""

    observed_at: datetime
    source: str
    rule: str
    count: int
    evidence: Evidence | None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class IndicatorDetail:
    """Everything the detail page shows about one indicator.

    Attributes:
        curve: ``(days since last sighting, confidence)`` points from 0 to the lifetime.
        explanations: ``(label, explanation)`` per privacy level for an approved peer,
            then for the public endpoint at the node's level.
    """

    indicator: Indicator
    confidence_now: int
    valid_until: datetime
    lifetime_days: float
    elapsed_days: float
    curve: tuple[tuple[float, float], ...]
    explanations: tuple[tuple[str, Explanation], ...]
    events: tuple[IndicatorEvent, ...]
    sightings: tuple[SightingView, ...]


def decay_curve(indicator: Indicator, decay: DecayModel) -> tuple[tuple[float, float], ...]:
    """Sampled decay curve of ``indicator`` over its type's lifetime."""
    lifetime = decay.lifetime(indicator.type)
    days = lifetime.total_seconds() / 86400
    points = []
    for step in range(CURVE_POINTS + 1):
        at = indicator.last_seen + lifetime * (step / CURVE_POINTS)
        points.append(
            (
                days * step / CURVE_POINTS,
                decay.score(indicator.confidence, indicator.type, indicator.last_seen, at),
            )
        )
    return tuple(points)


async def build_detail(
    indicator: Indicator,
    *,
    store: Store,
    keyring: Keyring,
    privacy: PrivacyFilter,
    decay: DecayModel,
    now: datetime,
) -> IndicatorDetail:
    """Assemble the detail view; evidence is decrypted here, for the local admin only."""
    valid_until = decay.valid_until(indicator.type, indicator.last_seen)
    explanations = [
        (
            f"approved peer, level {level.value}",
            privacy.explain(
                indicator, Destination.peer(EXAMPLE_PEER, level=level), valid_until=valid_until
            ),
        )
        for level in PrivacyLevel
    ]
    explanations.append(
        (
            "public endpoint",
            privacy.explain(indicator, Destination.public(), valid_until=valid_until),
        )
    )
    sightings = []
    for stored in await store.sightings_for(indicator.id, limit=50):
        evidence = None
        problem = ""
        if stored.sealed_evidence:
            try:
                evidence = open_evidence(keyring, stored.sealed_evidence, context=indicator.id)
            except CryptoError as exc:
                problem = f"evidence cannot be opened: {exc}"
        sightings.append(
            SightingView(
                stored.observed_at, stored.source, stored.rule, stored.count, evidence, problem
            )
        )
    lifetime = decay.lifetime(indicator.type)
    return IndicatorDetail(
        indicator=indicator,
        confidence_now=decay.confidence(
            indicator.confidence, indicator.type, indicator.last_seen, now
        ),
        valid_until=valid_until,
        lifetime_days=lifetime.total_seconds() / 86400,
        elapsed_days=max(0.0, (now - indicator.last_seen).total_seconds() / 86400),
        curve=decay_curve(indicator, decay),
        explanations=tuple(explanations),
        events=tuple(await store.indicator_events(indicator.id)),
        sightings=tuple(sightings),
    )
