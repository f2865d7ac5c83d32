"""The indicator: one IOC as this node knows it (the local view, everything included)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from dtim.errors import ValidationError
from dtim.model.clock import iso, parse_time, utc
from dtim.model.ids import IndicatorId, indicator_id
from dtim.model.normalize import infer_type, normalize
from dtim.model.scope import Scope
from dtim.model.tlp import Tlp
from dtim.model.types import CUSTOM_TYPES, TypeRegistry

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject = dict[str, JsonValue]

MAX_TAGS = 64
MAX_TAG_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Indicator:
    """An indicator of compromise with the seed's internal schema plus DTIM's fields.

    ``tags``, ``recipients`` and ``sources`` are sorted tuples so that equal
    indicators compare and serialise equally.
    """

    id: IndicatorId
    type: str
    value: str
    confidence: int
    created: datetime
    modified: datetime
    first_seen: datetime
    last_seen: datetime
    sightings: int = 1
    tags: tuple[str, ...] = ()
    tlp: Tlp = Tlp.GREEN
    scope: Scope = Scope.PRIVATE
    recipients: tuple[str, ...] = ()
    custom_fields: Mapping[str, JsonValue] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        """The local (admin) JSON form, with the seed's field names."""
        return {
            "id": self.id,
            "type": self.type,
            "value": self.value,
            "confidence": self.confidence,
            "created": iso(self.created),
            "modified": iso(self.modified),
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "sightings": self.sightings,
            "tags": list(self.tags),
            "tlp": self.tlp.value,
            "scope": self.scope.value,
            "recipients": list(self.recipients),
            "custom_fields": dict(self.custom_fields),
            "sources": list(self.sources),
        }


def validate_confidence(raw: object, field_name: str = "confidence") -> int:
    """A confidence is an integer 0-100.

    Raises:
        ValidationError: anything else.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValidationError(field_name, f"must be an integer 0-100, got {raw!r}")
    try:
        number = int(raw)
    except ValueError:
        raise ValidationError(field_name, f"must be an integer 0-100, got {raw!r}") from None
    if isinstance(raw, float) and raw != number:
        raise ValidationError(field_name, f"must be a whole number, got {raw!r}")
    if not 0 <= number <= 100:
        raise ValidationError(field_name, f"must be between 0 and 100, got {number}")
    return number


def clean_tags(tags: Iterable[str], field_name: str = "tags") -> tuple[str, ...]:
    """Strip, lowercase, de-duplicate and sort tags, refusing absurd ones.

    Raises:
        ValidationError: a tag is empty, too long, or there are too many.
    """
    cleaned: set[str] = set()
    for tag in tags:
        if not isinstance(tag, str):
            raise ValidationError(field_name, f"tags must be strings, got {tag!r}")
        text = " ".join(tag.split()).lower()
        if not text:
            continue
        if len(text) > MAX_TAG_LENGTH:
            raise ValidationError(field_name, f"tag longer than {MAX_TAG_LENGTH} characters")
        cleaned.add(text)
    if len(cleaned) > MAX_TAGS:
        raise ValidationError(field_name, f"more than {MAX_TAGS} tags")
    return tuple(sorted(cleaned))


def make_indicator(
    value: str,
    type_: str | None = None,
    *,
    now: datetime,
    confidence: int = 50,
    tags: Iterable[str] = (),
    tlp: Tlp | str = Tlp.GREEN,
    scope: Scope | str = Scope.PRIVATE,
    recipients: Iterable[str] = (),
    custom_fields: Mapping[str, JsonValue] | None = None,
    sources: Iterable[str] = (),
    sightings: int = 1,
    first_seen: datetime | None = None,
    last_seen: datetime | None = None,
    registry: TypeRegistry = CUSTOM_TYPES,
) -> Indicator:
    """Build a validated, normalised indicator; the type is inferred when not given.

    Raises:
        ValidationError: naming the field that is wrong and why.
    """
    kind = type_ if type_ is not None else infer_type(value).value
    normalized = normalize(kind, value, registry)
    marking = tlp if isinstance(tlp, Tlp) else Tlp.parse(tlp)
    reach = scope if isinstance(scope, Scope) else Scope.parse(scope)
    listed = tuple(sorted({r.strip() for r in recipients if r.strip()}))
    if sightings < 1:
        raise ValidationError("sightings", f"must be at least 1, got {sightings}")
    moment = utc(now)
    first = utc(first_seen) if first_seen is not None else moment
    last = (
        utc(last_seen)
        if last_seen is not None
        else max(first, moment if first_seen is None else first)
    )
    if last < first:
        raise ValidationError("last_seen", "is earlier than first_seen")
    return Indicator(
        id=indicator_id(kind, normalized),
        type=kind,
        value=normalized,
        confidence=validate_confidence(confidence),
        created=moment,
        modified=moment,
        first_seen=first,
        last_seen=last,
        sightings=sightings,
        tags=clean_tags(tags),
        tlp=marking,
        scope=reach,
        recipients=listed,
        custom_fields=dict(custom_fields or {}),
        sources=tuple(sorted(set(sources))),
    )


VERDICT_FIELD = "dtim_verdict"
"""Custom field holding an analyst's verdict on the indicator (written by ``gossip.verdicts``).

An object: ``verdict``, the pinned ``confidence``, the ``scope`` the indicator had
before, ``issued`` and ``expires`` (ISO times; ``expires`` null for a verdict
that stands until changed), the ``issuer`` node id and, on the issuing node
only, the analyst's ``reason``.
"""


def standing_verdict(indicator: Indicator, at: datetime) -> Mapping[str, JsonValue] | None:
    """The analyst's verdict recorded on ``indicator`` if it still stands at ``at``, else None."""
    raw = indicator.custom_fields.get(VERDICT_FIELD)
    if not isinstance(raw, dict):
        return None
    expires = raw.get("expires")
    if expires is None:
        return raw
    try:
        ends = parse_time(str(expires), VERDICT_FIELD)
    except ValidationError:
        return None  # an unreadable expiry cannot keep pinning the indicator
    return raw if utc(at) < ends else None


def lift_verdict(indicator: Indicator) -> Indicator:
    """The indicator without its verdict, its scope from before the verdict restored."""
    raw = indicator.custom_fields.get(VERDICT_FIELD)
    scope = indicator.scope
    if isinstance(raw, dict) and isinstance(raw.get("scope"), str):
        try:
            scope = Scope.parse(str(raw["scope"]))
        except ValidationError:
            scope = indicator.scope
    fields = {k: v for k, v in indicator.custom_fields.items() if k != VERDICT_FIELD}
    return replace(indicator, scope=scope, custom_fields=fields)


def merge(existing: Indicator, new: Indicator) -> Indicator:
    """Fold a new observation of the same indicator into what the node knows.

    Sightings add up, first_seen takes the minimum, last_seen the maximum,
    tags, recipients and sources the union; confidence keeps the higher value,
    and the marking the stricter one (a report never loosens its TLP). While
    an analyst's verdict stands (:func:`standing_verdict` at the new
    observation's ``last_seen``) the confidence stays what the verdict pinned;
    an observation after the verdict expired lifts it (:func:`lift_verdict`).

    Raises:
        ValidationError: the two are different indicators.
    """
    if existing.id != new.id:
        raise ValidationError("id", f"cannot merge {new.id} into {existing.id}")
    pinned = standing_verdict(existing, new.last_seen) is not None
    if not pinned and VERDICT_FIELD in existing.custom_fields:
        existing = lift_verdict(existing)
    return replace(
        existing,
        confidence=existing.confidence if pinned else max(existing.confidence, new.confidence),
        modified=max(existing.modified, new.modified),
        first_seen=min(existing.first_seen, new.first_seen),
        last_seen=max(existing.last_seen, new.last_seen),
        sightings=existing.sightings + new.sightings,
        tags=tuple(sorted(set(existing.tags) | set(new.tags))),
        tlp=existing.tlp.stricter(new.tlp),
        recipients=tuple(sorted(set(existing.recipients) | set(new.recipients))),
        custom_fields={**new.custom_fields, **existing.custom_fields},
        sources=tuple(sorted(set(existing.sources) | set(new.sources))),
    )


def indicator_from_json(
    data: Mapping[str, object], registry: TypeRegistry = CUSTOM_TYPES
) -> Indicator:
    """Read the JSON form written by :meth:`Indicator.to_json` (or the seed's schema).

    Raises:
        ValidationError: naming the first field that is missing or wrong.
    """
    value = data.get("value")
    if not isinstance(value, str):
        raise ValidationError("value", "missing or not a string")
    raw_type = data.get("type")
    if raw_type is not None and not isinstance(raw_type, str):
        raise ValidationError("type", "must be a string")
    created_raw = data.get("created") or data.get("first_seen")
    if not isinstance(created_raw, str):
        raise ValidationError("created", "missing or not a timestamp string")
    created = parse_time(created_raw, "created")
    first = parse_time(str(data.get("first_seen") or created_raw), "first_seen")
    last = parse_time(
        str(data.get("last_seen") or data.get("modified") or created_raw), "last_seen"
    )
    sightings = data.get("sightings", 1)
    if not isinstance(sightings, int) or isinstance(sightings, bool):
        raise ValidationError("sightings", "must be an integer")
    indicator = make_indicator(
        value,
        _ip_alias(raw_type, value),
        now=created,
        confidence=validate_confidence(data.get("confidence", 50)),
        tags=_strings(data.get("tags", []), "tags"),
        tlp=str(data.get("tlp", Tlp.GREEN.value)),
        scope=str(data.get("scope", Scope.PRIVATE.value)),
        recipients=_strings(data.get("recipients", []), "recipients"),
        custom_fields=_object(data.get("custom_fields", {}), "custom_fields"),
        sources=_strings(data.get("sources", []), "sources"),
        sightings=sightings,
        first_seen=first,
        last_seen=max(first, last),
        registry=registry,
    )
    modified_raw = data.get("modified")
    if isinstance(modified_raw, str):
        indicator = replace(indicator, modified=max(created, parse_time(modified_raw, "modified")))
    return indicator


def _ip_alias(raw_type: str | None, value: str) -> str | None:
    # The seed's schema says "ip"; DTIM distinguishes the address families.
    if raw_type == "ip":
        return infer_type(value).value
    return raw_type


def _strings(raw: object, field_name: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ValidationError(field_name, "must be a list of strings")
    return list(raw)


def _object(raw: object, field_name: str) -> dict[str, JsonValue]:
    if not isinstance(raw, dict):
        raise ValidationError(field_name, "must be an object")
    return raw
