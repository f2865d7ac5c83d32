"""Explanations: what would leave for a destination, field by field, and why.

Operators read these (``dtim privacy check``) before they trust the filter.
An explanation is built from the filter's own decision, so it can never
disagree with what the filter actually sends. It shows dropped values, so it is
for the local operator only and must never itself leave the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from dtim.model import Indicator, JsonObject, JsonValue
from dtim.model.clock import iso
from dtim.privacy.destination import Destination
from dtim.privacy.marking import WithholdReason
from dtim.privacy.policy import PrivacyLevel
from dtim.privacy.shareable import LEVEL_FIELDS
from dtim.privacy.warninglists import WarninglistHit

if TYPE_CHECKING:
    from dtim.privacy.filter import PrivacyFilter

_NEVER = {
    "created": "local bookkeeping: it dates this node's own processing",
    "modified": "local bookkeeping: it dates this node's own processing",
    "scope": "enforced here, never sent",
    "recipients": "never leave: they tell who else was told; receivers must not forward AMBER/RED",
    "sources": "name local watchers or peers: attribution",
}
_WHY_KEPT = {
    "id": "public id: uuid5 of type and value, the same on every node",
    "type": "the indicator itself",
    "value": "the indicator itself",
    "tlp": "the marking travels with the indicator and is never loosened",
    "confidence": "moderate and open share confidence",
}


@dataclass(frozen=True, slots=True)
class FieldDecision:
    """One field (or one tag, or one custom field): kept or dropped, and why.

    ``value`` is what leaves when kept, and the local value when dropped.
    """

    name: str
    kept: bool
    reason: str
    value: JsonValue = None

    def to_json(self) -> JsonObject:
        """Plain JSON for ``--json``."""
        return {"name": self.name, "kept": self.kept, "reason": self.reason, "value": self.value}


@dataclass(frozen=True, slots=True)
class Explanation:
    """The filter's decision for one indicator and destination, spelled out."""

    indicator: Indicator
    destination: str
    level: PrivacyLevel
    shared: bool
    reason: WithholdReason | None
    detail: str
    warninglist: WarninglistHit | None
    fields: tuple[FieldDecision, ...]
    tags: tuple[FieldDecision, ...]
    custom_fields: tuple[FieldDecision, ...]
    output: JsonObject | None

    def to_json(self) -> JsonObject:
        """Plain JSON for ``dtim privacy check --json``."""
        return {
            "indicator": {
                "id": self.indicator.id,
                "type": self.indicator.type,
                "value": self.indicator.value,
            },
            "destination": self.destination,
            "level": self.level.value,
            "shared": self.shared,
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
            "warninglist": None if self.warninglist is None else dict(self.warninglist.to_json()),
            "fields": [item.to_json() for item in self.fields],
            "tags": [item.to_json() for item in self.tags],
            "custom_fields": [item.to_json() for item in self.custom_fields],
            "output": self.output,
        }


def explain_decision(
    privacy: PrivacyFilter,
    indicator: Indicator,
    destination: Destination,
    valid_until: datetime | None,
) -> Explanation:
    """Run the filter and annotate every field of ``indicator`` with the outcome."""
    decision = privacy.sanitize(indicator, destination, valid_until=valid_until)
    level = privacy.level_for(destination)
    output = None if decision.shareable is None else decision.shareable.to_json()
    local = indicator.to_json()
    local["valid_until"] = None if valid_until is None else iso(valid_until)
    shared_keys = LEVEL_FIELDS[level]
    fields: list[FieldDecision] = []
    for name, value in local.items():
        if name in _NEVER:
            fields.append(FieldDecision(name, False, _NEVER[name], value))
        elif output is None:
            fields.append(FieldDecision(name, False, "the indicator is withheld", value))
        elif name in shared_keys:
            fields.append(FieldDecision(name, True, _why_kept(name, privacy), output[name]))
        else:
            fields.append(FieldDecision(name, False, f"{level.value} does not share {name}", value))
    open_level = output is not None and level is PrivacyLevel.OPEN
    tags = tuple(_tag(privacy, tag, open_level) for tag in indicator.tags)
    customs = tuple(
        _custom(privacy, name, value, open_level)
        for name, value in sorted(indicator.custom_fields.items())
    )
    return Explanation(
        indicator=indicator,
        destination=destination.describe(),
        level=level,
        shared=output is not None,
        reason=decision.reason,
        detail=decision.detail,
        warninglist=decision.hit or privacy.warninglists.match(indicator),
        fields=tuple(fields),
        tags=tags,
        custom_fields=customs,
        output=output,
    )


def _why_kept(name: str, privacy: PrivacyFilter) -> str:
    policy = privacy.policy
    if name in ("first_seen", "last_seen", "valid_until"):
        return f"floored to the {policy.timestamp_precision.value}"
    if name == "sightings":
        noised = f"Laplace noise, epsilon {policy.dp_epsilon:g}" if policy.dp_epsilon > 0 else ""
        bucketed = "the lower bound of its bucket" if policy.sightings_buckets else ""
        return ", then ".join(part for part in (noised, bucketed) if part)
    if name == "tags":
        return "open shares tags that pass the stripping checks"
    if name == "custom_fields":
        return "open shares allow-listed custom fields that pass the stripping checks"
    return _WHY_KEPT[name]


def _tag(privacy: PrivacyFilter, tag: str, open_level: bool) -> FieldDecision:
    if not open_level:
        return FieldDecision(tag, False, "tags leave only at level open", tag)
    verdict = privacy.tag_verdict(tag)
    return FieldDecision(tag, verdict is None, verdict or "passes the stripping checks", tag)


def _custom(privacy: PrivacyFilter, name: str, value: JsonValue, open_level: bool) -> FieldDecision:
    if not open_level:
        return FieldDecision(name, False, "custom fields leave only at level open", value)
    verdict = privacy.custom_field_verdict(name, value)
    return FieldDecision(
        name, verdict is None, verdict or "allow-listed and passes the stripping checks", value
    )
