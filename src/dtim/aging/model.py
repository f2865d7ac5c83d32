"""Decay models: lifetimes per indicator type and the curve's shape, stored by name.

An indicator refers to its decay model by name, never by a copy of the
numbers, so changing ``[aging]`` and reloading recomputes every score: the
node keeps only base confidences and last-sighting times, and derives the
current confidence on read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from dtim.aging.curve import score, whole
from dtim.errors import ValidationError
from dtim.model.clock import utc
from dtim.model.types import IndicatorType

DEFAULT_DELTA = 2.0
"""The curve's shape when ``[aging]`` does not set one (MISP's default too)."""

DEFAULT_LIFETIME_DAYS: Mapping[str, int] = MappingProxyType(
    {
        IndicatorType.IPV4.value: 30,
        IndicatorType.IPV6.value: 30,
        IndicatorType.CIDR.value: 30,
        IndicatorType.URL.value: 60,
        # Sender addresses of phishing campaigns are burnt more slowly than
        # URLs but far sooner than domains: 90 days.
        IndicatorType.EMAIL.value: 90,
        IndicatorType.DOMAIN.value: 180,
        IndicatorType.MD5.value: 365,
        IndicatorType.SHA1.value: 365,
        IndicatorType.SHA256.value: 365,
        IndicatorType.SHA512.value: 365,
    }
)
"""Lifetimes per built-in type, in days."""

FALLBACK_LIFETIME_DAYS = 90
"""Lifetime of a custom type that ``[aging]`` does not name."""

DEFAULT_MODEL_NAME = "default"


def _days(value: float) -> timedelta:
    return timedelta(days=value)


@dataclass(frozen=True, slots=True)
class DecayModel:
    """A named decay model: one lifetime per type, one curve shape.

    Attributes:
        name: how indicators refer to this model.
        lifetimes: lifetime per indicator type.
        delta: the curve's shape δ (2 = slow start, steep end).
        fallback: lifetime of any type not in ``lifetimes``.
    """

    name: str = DEFAULT_MODEL_NAME
    lifetimes: Mapping[str, timedelta] = field(
        default_factory=lambda: MappingProxyType(
            {kind: _days(days) for kind, days in DEFAULT_LIFETIME_DAYS.items()}
        )
    )
    delta: float = DEFAULT_DELTA
    fallback: timedelta = field(default_factory=lambda: _days(FALLBACK_LIFETIME_DAYS))

    def __post_init__(self) -> None:
        if not self.name:
            raise ValidationError("aging.model", "a decay model needs a name")
        if not self.delta > 0:
            raise ValidationError("aging.delta", f"must be positive, got {self.delta!r}")
        for kind, lifetime in {**self.lifetimes, "*": self.fallback}.items():
            if lifetime <= timedelta(0):
                raise ValidationError(f"aging.{kind}", f"lifetime must be positive, got {lifetime}")
        object.__setattr__(self, "lifetimes", MappingProxyType(dict(self.lifetimes)))

    @classmethod
    def from_days(
        cls,
        lifetimes: Mapping[str, float],
        *,
        name: str = DEFAULT_MODEL_NAME,
        delta: float = DEFAULT_DELTA,
        fallback_days: float = FALLBACK_LIFETIME_DAYS,
    ) -> DecayModel:
        """Build a model from ``{type: days}`` (what ``[aging]`` holds) over the defaults.

        Raises:
            ValidationError: a lifetime or delta is not positive.
        """
        merged = {kind: float(days) for kind, days in DEFAULT_LIFETIME_DAYS.items()}
        merged.update({kind: float(days) for kind, days in lifetimes.items()})
        for kind, days in merged.items():
            if not days > 0:
                raise ValidationError(f"aging.{kind}", f"lifetime must be positive, got {days!r}")
        if not fallback_days > 0:
            raise ValidationError("aging.fallback", f"must be positive, got {fallback_days!r}")
        return cls(
            name=name,
            lifetimes={kind: _days(days) for kind, days in merged.items()},
            delta=delta,
            fallback=_days(fallback_days),
        )

    def lifetime(self, type_: str) -> timedelta:
        """The lifetime L of an indicator type."""
        return self.lifetimes.get(type_, self.fallback)

    def score(self, base: float, type_: str, last_seen: datetime, now: datetime) -> float:
        """Decayed confidence (a float) of a ``type_`` indicator last seen at ``last_seen``."""
        elapsed = (utc(now) - utc(last_seen)).total_seconds()
        return score(base, elapsed, self.lifetime(type_).total_seconds(), self.delta)

    def confidence(self, base: int, type_: str, last_seen: datetime, now: datetime) -> int:
        """Decayed confidence as a whole number; 0 exactly when expired."""
        return whole(self.score(base, type_, last_seen, now))

    def valid_until(self, type_: str, last_seen: datetime) -> datetime:
        """When the confidence reaches zero: ``last_seen + L``."""
        return utc(last_seen) + self.lifetime(type_)

    def expired(self, type_: str, last_seen: datetime, now: datetime) -> bool:
        """True from ``valid_until`` on: the indicator is purged everywhere at the same time."""
        return utc(now) >= self.valid_until(type_, last_seen)


class DecayModels:
    """Decay models by name; replacing a model re-scores everything that names it."""

    def __init__(self, models: Iterable[DecayModel] = ()) -> None:
        self._models: dict[str, DecayModel] = {}
        for model in (DecayModel(), *models):
            self.put(model)

    def put(self, model: DecayModel) -> None:
        """Add or replace the model called ``model.name``."""
        self._models[model.name] = model

    def get(self, name: str) -> DecayModel:
        """The model called ``name``.

        Raises:
            ValidationError: no model has that name.
        """
        try:
            return self._models[name]
        except KeyError:
            known = ", ".join(sorted(self._models))
            raise ValidationError(
                "aging.model", f"unknown decay model {name!r} (known: {known})"
            ) from None

    def names(self) -> frozenset[str]:
        """Names of every model held."""
        return frozenset(self._models)
