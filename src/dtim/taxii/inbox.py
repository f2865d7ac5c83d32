"""STIX objects from outside (the inbox collection, ``dtim taxii pull``) as local indicators.

Their scope follows their marking: TLP:CLEAR becomes ``public``, GREEN
``private``; AMBER, AMBER+STRICT and RED become ``group`` when DTIM's
extension names recipients and ``local`` otherwise, so nothing received
under a restrictive marking is ever shared wider than it came.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from dtim.errors import StixError, ValidationError
from dtim.model import Indicator, Scope, Tlp
from dtim.stix.mapping import indicators_from_stix
from dtim.stix.markings import StixObject, tlp_of_definition
from dtim.stix.patterns import UnsupportedPatternError

ACCEPTED_SUPPORT_TYPES = frozenset(
    {"marking-definition", "identity", "extension-definition", "sighting"}
)
"""Objects taken as context (markings are read) though they do not become indicators."""


def scope_for(tlp: Tlp, recipients: Sequence[str]) -> Scope:
    """The scope a received indicator gets from its marking."""
    if tlp is Tlp.CLEAR:
        return Scope.PUBLIC
    if tlp is Tlp.GREEN:
        return Scope.PRIVATE
    return Scope.GROUP if recipients else Scope.LOCAL


def localize(indicator: Indicator) -> Indicator:
    """Set the scope of a received indicator from its marking."""
    return replace(indicator, scope=scope_for(indicator.tlp, indicator.recipients))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one posted object: the STIX id, its version, and a failure message or ''."""

    id: str
    version: str
    message: str = ""


@dataclass(slots=True)
class Intake:
    """Indicators made from an envelope, and one outcome per object."""

    indicators: list[Indicator] = field(default_factory=list)
    successes: list[Outcome] = field(default_factory=list)
    failures: list[Outcome] = field(default_factory=list)
    origins: list[Outcome] = field(default_factory=list)

    def refuse(self, accept: Callable[[Indicator], str | None]) -> None:
        """Drop indicators ``accept`` refuses; their objects move from successes to failures."""
        kept: list[Indicator] = []
        kept_origins: list[Outcome] = []
        refused: dict[str, str] = {}
        for indicator, origin in zip(self.indicators, self.origins, strict=True):
            reason = accept(indicator)
            if reason is None:
                kept.append(indicator)
                kept_origins.append(origin)
            else:
                refused[origin.id] = reason
        self.indicators, self.origins = kept, kept_origins
        for outcome in [o for o in self.successes if o.id in refused]:
            self.successes.remove(outcome)
            self.failures.append(Outcome(outcome.id, outcome.version, refused[outcome.id]))


def take_in(
    objects: list[StixObject], *, now: datetime, sources: tuple[str, ...], default_tlp: Tlp
) -> Intake:
    """Turn posted STIX objects into local indicators, recording an outcome for each object.

    Marking definitions anywhere in the envelope are honoured for every object.
    """
    definitions: dict[str, Tlp] = {}
    for obj in objects:
        if obj.get("type") == "marking-definition":
            tlp = tlp_of_definition(obj)
            if tlp is not None:
                definitions[str(obj["id"])] = tlp
    intake = Intake()
    for obj in objects:
        ident = str(obj["id"])
        version = str(obj.get("modified") or obj.get("created") or "")
        kind = obj["type"]
        if kind in ACCEPTED_SUPPORT_TYPES:
            intake.successes.append(Outcome(ident, version))
            continue
        if kind != "indicator":
            intake.failures.append(
                Outcome(ident, version, f"{kind} objects are not kept: the inbox takes indicators")
            )
            continue
        try:
            made = indicators_from_stix(
                obj, now=now, definitions=definitions, default_tlp=default_tlp, sources=sources
            )
        except UnsupportedPatternError as exc:
            intake.failures.append(Outcome(ident, version, exc.reason))
            continue
        except (StixError, ValidationError) as exc:
            intake.failures.append(Outcome(ident, version, str(exc)))
            continue
        outcome = Outcome(ident, version)
        intake.indicators.extend(localize(item) for item in made)
        intake.origins.extend(outcome for _ in made)
        intake.successes.append(outcome)
    return intake
