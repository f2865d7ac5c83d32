"""Per-peer reputation in the manner of libp2p gossipsub v1.1 peer scoring.

A peer's score is a weighted sum of counters::

    P1  time approved (hours, capped)                          weight > 0
    P2  first deliveries later corroborated (capped)           weight > 0
    P3  missed sessions, squared                               weight < 0
    P4  invalid reports, squared; warninglist hits, squared    weight < 0
    P5  operator trust (a number a person sets)                weight > 0
    P6  peers sharing its network, or its certificate issuer,
        beyond a threshold, squared                            weight < 0
    P7  misbehaviour at the door: flooding past the rate
        limit, forged or replayed request signatures, squared  weight < 0

Counters P2-P4 and P7 decay geometrically over time, so old sins fade. A peer whose
score falls below ``gossip_threshold`` is quarantined: not gossiped with,
and its requests refused, until a person clears it. While the node itself
looks unhealthy (most of its recent sessions failed, or the caller says so)
it blames nobody: no penalty is recorded, because the fault is probably its
own. Pure: time comes from an injected clock, and nothing here does I/O.
"""

from __future__ import annotations

import collections
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from dtim.errors import ValidationError
from dtim.model.clock import Clock
from dtim.model.ids import IndicatorId, PeerId


@dataclass(frozen=True, slots=True)
class ReputationParams:
    """Weights, caps, decay and thresholds."""

    time_weight: float = 0.05
    time_cap_hours: float = 240.0
    corroborated_weight: float = 0.5
    corroborated_cap: float = 20.0
    missed_weight: float = -0.25
    invalid_weight: float = -1.0
    warninglist_weight: float = -0.5
    trust_weight: float = 5.0
    colocation_weight: float = -4.0
    colocation_threshold: int = 1
    issuer_weight: float = -2.0
    issuer_threshold: int = 1
    behaviour_weight: float = -0.05
    decay: float = 0.9
    decay_interval_seconds: float = 3600.0
    decay_to_zero: float = 0.01
    gossip_threshold: float = -10.0
    health_window: int = 20
    unhealthy_failure_ratio: float = 0.5
    first_delivery_memory: int = 100_000

    def __post_init__(self) -> None:
        if not 0.0 < self.decay < 1.0 or self.decay_interval_seconds <= 0:
            raise ValidationError(
                "reputation.decay", "decay must be in (0, 1) with a positive interval"
            )
        penalties = (
            self.missed_weight,
            self.invalid_weight,
            self.warninglist_weight,
            self.behaviour_weight,
        )
        if max(penalties) > 0:
            raise ValidationError("reputation", "penalty weights must not be positive")
        if self.health_window < 1 or not 0.0 < self.unhealthy_failure_ratio <= 1.0:
            raise ValidationError("reputation", "need health_window >= 1 and a ratio in (0, 1]")


@dataclass(slots=True)
class _Counters:
    approved_at: datetime
    updated: datetime
    network: str | None = None
    issuer: str | None = None
    trust: float = 0.0
    corroborated: float = 0.0
    missed: float = 0.0
    invalid: float = 0.0
    warninglist: float = 0.0
    behaviour: float = 0.0


@dataclass(frozen=True, slots=True)
class Standing:
    """A peer's score and its parts, for ``dtim peers list`` and the dashboard."""

    score: float
    quarantined: bool
    parts: dict[str, float] = field(default_factory=dict)


class Reputation:
    """Scores of the approved peers of one node."""

    def __init__(self, clock: Clock, params: ReputationParams | None = None) -> None:
        self._clock = clock
        self._params = params or ReputationParams()
        self._peers: dict[PeerId, _Counters] = {}
        self._quarantined: set[PeerId] = set()
        self._outcomes: collections.deque[bool] = collections.deque(
            maxlen=self._params.health_window
        )
        self._forced_unhealthy = False
        self._first: OrderedDict[IndicatorId, PeerId] = OrderedDict()

    # -- membership -------------------------------------------------------------

    def approve(
        self,
        peer: PeerId,
        *,
        approved_at: datetime | None = None,
        network: str | None = None,
        issuer: str | None = None,
    ) -> None:
        """Start scoring a peer (approved at ``approved_at``, default now)."""
        now = self._clock.now()
        self._peers[peer] = _Counters(approved_at or now, now, network, issuer)

    def remove(self, peer: PeerId) -> None:
        """Stop scoring a peer (revoked or rejected)."""
        self._peers.pop(peer, None)
        self._quarantined.discard(peer)

    def set_trust(self, peer: PeerId, trust: float) -> None:
        """Operator trust, typically -1 to 1 (P5)."""
        self._counters(peer).trust = trust

    # -- health -----------------------------------------------------------------

    def set_unhealthy(self, unhealthy: bool) -> None:
        """Force the node's own health state (e.g. the store is failing)."""
        self._forced_unhealthy = unhealthy

    @property
    def healthy(self) -> bool:
        """False while most recent sessions failed or the node was declared unhealthy."""
        if self._forced_unhealthy:
            return False
        window = self._outcomes
        if len(window) < min(4, self._params.health_window):
            return True  # too few sessions to judge
        failures = sum(1 for ok in window if not ok)
        return failures / len(window) < self._params.unhealthy_failure_ratio

    # -- events -----------------------------------------------------------------

    def record_session(self, peer: PeerId, ok: bool) -> None:
        """A session with ``peer`` finished (``ok``) or was missed (counted only while healthy)."""
        self._outcomes.append(ok)
        if not ok and self.healthy and peer in self._peers:
            self._decayed(peer).missed += 1
            self._check(peer)

    def record_invalid(self, peer: PeerId, count: int = 1) -> None:
        """``peer`` sent reports that failed validation or signature checks."""
        if self.healthy and peer in self._peers:
            self._decayed(peer).invalid += count
            self._check(peer)

    def record_warninglist(self, peer: PeerId, count: int = 1) -> None:
        """``peer`` sent reports that hit a warninglist (refused)."""
        if self.healthy and peer in self._peers:
            self._decayed(peer).warninglist += count
            self._check(peer)

    def record_misbehaviour(self, peer: PeerId, count: int = 1) -> None:
        """``peer`` misbehaved at the door (P7): flooded past its rate limit, or sent a request
        whose signature was forged or replayed. Callers count episodes, not single requests."""
        if self.healthy and peer in self._peers:
            self._decayed(peer).behaviour += count
            self._check(peer)

    def record_first_delivery(self, peer: PeerId, indicator: IndicatorId) -> None:
        """``peer`` was the first to bring us a report about ``indicator``."""
        if indicator not in self._first:
            self._first[indicator] = peer
            while len(self._first) > self._params.first_delivery_memory:
                self._first.popitem(last=False)

    def record_corroborated(self, indicator: IndicatorId) -> None:
        """``indicator`` reached enough distinct reporters: credit whoever delivered it first."""
        peer = self._first.pop(indicator, None)
        if peer is not None and peer in self._peers:
            self._decayed(peer).corroborated += 1

    # -- reading ----------------------------------------------------------------

    def standing(self, peer: PeerId) -> Standing:
        """The peer's score now, with its parts."""
        p = self._params
        counters = self._decayed(peer)
        hours = (self._clock.now() - counters.approved_at).total_seconds() / 3600.0
        parts = {
            "time": p.time_weight * min(max(hours, 0.0), p.time_cap_hours),
            "corroborated": p.corroborated_weight * min(counters.corroborated, p.corroborated_cap),
            "missed": p.missed_weight * counters.missed**2,
            "invalid": p.invalid_weight * counters.invalid**2
            + p.warninglist_weight * counters.warninglist**2,
            "behaviour": p.behaviour_weight * counters.behaviour**2,
            "trust": p.trust_weight * counters.trust,
            "colocation": self._shared(
                "network", counters.network, p.colocation_threshold, p.colocation_weight
            )
            + self._shared("issuer", counters.issuer, p.issuer_threshold, p.issuer_weight),
        }
        return Standing(sum(parts.values()), peer in self._quarantined, parts)

    def score(self, peer: PeerId) -> float:
        """The peer's score now."""
        return self.standing(peer).score

    def allowed(self, peer: PeerId) -> bool:
        """True when ``peer`` may be gossiped with (known, not quarantined, above threshold)."""
        if peer not in self._peers or peer in self._quarantined:
            return False
        self._check(peer)
        return peer not in self._quarantined

    def quarantined(self) -> frozenset[PeerId]:
        """Peers waiting for a person to look at them."""
        return frozenset(self._quarantined)

    def clear(self, peer: PeerId) -> None:
        """A person looked: lift the quarantine and forget the penalties."""
        self._quarantined.discard(peer)
        counters = self._counters(peer)
        counters.missed = counters.invalid = counters.warninglist = counters.behaviour = 0.0

    # -- internals --------------------------------------------------------------

    def _counters(self, peer: PeerId) -> _Counters:
        try:
            return self._peers[peer]
        except KeyError:
            raise ValidationError("peer", f"{peer} is not scored (not approved)") from None

    def _decayed(self, peer: PeerId) -> _Counters:
        p = self._params
        counters = self._counters(peer)
        now = self._clock.now()
        steps = (now - counters.updated).total_seconds() / p.decay_interval_seconds
        if steps > 0:
            factor = p.decay**steps
            for name in ("corroborated", "missed", "invalid", "warninglist", "behaviour"):
                value = getattr(counters, name) * factor
                setattr(counters, name, 0.0 if value < p.decay_to_zero else value)
            counters.updated = now
        return counters

    def _shared(self, attribute: str, value: str | None, threshold: int, weight: float) -> float:
        if value is None:
            return 0.0
        sharing = sum(1 for c in self._peers.values() if getattr(c, attribute) == value)
        excess = max(0, sharing - threshold)
        return weight * excess**2

    def _check(self, peer: PeerId) -> None:
        if self.standing(peer).score < self._params.gossip_threshold:
            self._quarantined.add(peer)
