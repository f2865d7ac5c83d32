"""Shared indicators to STIX 2.1 objects, and STIX indicators back to DTIM indicators.

The input of every writer here is the JSON form of what the privacy filter
lets out (``dtim.privacy``'s ``Shareable``): which keys it holds is what the
privacy level allowed, and the STIX object carries exactly those and no more:

======================  ===========================================================
shared field            STIX 2.1 property (§4.7 Indicator, §5.6 Sighting)
======================  ===========================================================
id                      ``id`` = ``indicator--<id>`` (the same uuid5 on every node)
type, value             ``pattern`` (``pattern_type`` ``stix``), ``name``
tlp                     ``object_marking_refs`` (TLP 1.0 and TLP 2.0 ids)
first_seen              ``created`` and ``valid_from``
last_seen               DTIM extension ``last_seen``
valid_until             ``valid_until`` (aging)
confidence              ``confidence``
tags                    ``labels``; ``indicator_types`` where a tag is in the vocabulary
sightings (bucketed)    a ``sighting`` object with ``count``
recipients              DTIM extension ``recipients``
custom_fields           DTIM extension ``custom_fields``
======================  ===========================================================

Objects are plain dicts built by hand: the ``stix2`` library validates every
property on construction and is two orders of magnitude slower.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from dtim.errors import StixError, ValidationError
from dtim.model import Indicator, Tlp, make_indicator
from dtim.model.clock import iso, parse_time
from dtim.model.indicator import JsonValue
from dtim.stix.markings import DTIM_EXTENSION_ID, StixObject, tlp_from_refs, tlp_marking_refs
from dtim.stix.patterns import build_pattern, parse_pattern

SIGHTING_NAMESPACE = uuid.UUID("0d6f3f4e-52b8-5d0c-9c3e-7f1c2b3a4d5e")
"""Namespace of sighting ids (uuid5 of the indicator id), so they are stable too."""

INDICATOR_TYPES_OV = frozenset(
    {
        "anomalous-activity",
        "anonymization",
        "benign",
        "compromised",
        "malicious-activity",
        "attribution",
        "unknown",
    }
)
"""STIX 2.1 ``indicator-type-ov`` (§10.11)."""

TAG_INDICATOR_TYPES: dict[str, str] = {
    "malicious": "malicious-activity",
    "malware": "malicious-activity",
    "c2": "malicious-activity",
    "botnet": "malicious-activity",
    "phishing": "malicious-activity",
    "bruteforce": "malicious-activity",
    "brute-force": "malicious-activity",
    "ssh-bruteforce": "malicious-activity",
    "exploit": "malicious-activity",
    "ransomware": "malicious-activity",
    "spam": "malicious-activity",
    "scanner": "anomalous-activity",
    "scan": "anomalous-activity",
    "port-scan": "anomalous-activity",
    "suspicious": "anomalous-activity",
    "tor": "anonymization",
    "tor-exit": "anonymization",
    "vpn": "anonymization",
    "proxy": "anonymization",
    "compromised": "compromised",
    "benign": "benign",
    "attribution": "attribution",
}
"""Tags that name an ``indicator-type-ov`` term (vocabulary terms also map to themselves)."""


_TLPS = {tlp.value: tlp for tlp in Tlp}


def stix_time(raw: object) -> str:
    """A STIX timestamp (millisecond precision, ``Z``) from a datetime or an ISO string.

    Raises:
        ValidationError: ``raw`` is not a timestamp.
    """
    if isinstance(raw, str):
        if len(raw) == 24 and raw[19] == "." and raw[23] == "Z":
            return raw  # already in the form DTIM writes
        return iso(parse_time(raw))
    if isinstance(raw, datetime):
        return iso(raw)
    raise ValidationError("timestamp", f"not a timestamp: {raw!r}")


def indicator_types(tags: list[str]) -> list[str]:
    """The ``indicator-type-ov`` terms the tags name, sorted and without duplicates."""
    found = {TAG_INDICATOR_TYPES.get(tag, tag) for tag in tags}
    return sorted(found & INDICATOR_TYPES_OV)


def indicator_object(shared: Mapping[str, object], *, stamp: str) -> StixObject:
    """The STIX 2.1 ``indicator`` for one shared indicator.

    Args:
        shared: the privacy filter's JSON form (``id``, ``type``, ``value``,
            ``tlp`` always; the rest as the level allows).
        stamp: STIX timestamp of this version's publication (the TAXII
            ``date_added``, or the export time). It is ``modified``, and
            stands in for ``created``/``valid_from`` when the level withholds
            first_seen.

    Raises:
        ValidationError: a field is missing or malformed.
    """
    try:
        ident = str(shared["id"])
        kind = str(shared["type"])
        value = str(shared["value"])
        tlp = shared["tlp"]
    except KeyError as exc:
        raise ValidationError(str(exc.args[0]), "missing from the shared indicator") from None
    first = shared.get("first_seen")
    created = stix_time(first) if first is not None else stamp
    obj: StixObject = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--" + ident,
        "created": created,
        "modified": stamp if stamp > created else created,
        "name": value,
        "pattern": build_pattern(kind, value),
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": created,
    }
    until = shared.get("valid_until")
    if until is not None:
        obj["valid_until"] = _after(stix_time(until), created)
    confidence = shared.get("confidence")
    if confidence is not None:
        obj["confidence"] = confidence
    tags = shared.get("tags")
    if tags:
        labels = [str(tag) for tag in tags]  # type: ignore[attr-defined]  # a list from privacy
        obj["labels"] = labels
        vocab = indicator_types(labels)
        if vocab:
            obj["indicator_types"] = vocab
    obj["object_marking_refs"] = tlp_marking_refs(
        tlp if isinstance(tlp, Tlp) else Tlp.parse(str(tlp))
    )
    extension = _extension(shared)
    if extension:
        obj["extensions"] = {DTIM_EXTENSION_ID: extension}
    return obj


def _after(until: str, start: str) -> str:
    # STIX requires valid_until > valid_from; an indicator aged out before it
    # was first seen is expired, which one millisecond after the start says.
    if until > start:
        return until
    return iso(parse_time(start) + timedelta(milliseconds=1))


def _extension(shared: Mapping[str, object]) -> StixObject:
    out: StixObject = {}
    last = shared.get("last_seen")
    if last is not None:
        out["last_seen"] = stix_time(last)
    recipients = shared.get("recipients")
    if recipients:
        out["recipients"] = [str(r) for r in recipients]  # type: ignore[attr-defined]  # list from privacy
    custom = shared.get("custom_fields")
    if isinstance(custom, Mapping) and custom:
        out["custom_fields"] = dict(custom)
    if out:
        out["extension_type"] = "property-extension"
    return out


def uses_extension(obj: Mapping[str, object]) -> bool:
    """True when a STIX object refers to DTIM's extension definition."""
    extensions = obj.get("extensions")
    return isinstance(extensions, Mapping) and DTIM_EXTENSION_ID in extensions


def sighting_count(raw: object) -> int | None:
    """A ``sighting`` count from a bucketed sightings field (``12``, ``"10-99"``, ``"100+"``)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return max(0, min(raw, 999_999_999))
    if isinstance(raw, str):
        digits = ""
        for char in raw.strip():
            if not char.isdigit():
                break
            digits += char
        return min(int(digits), 999_999_999) if digits else None
    return None


def sighting_object(shared: Mapping[str, object], indicator: StixObject) -> StixObject | None:
    """The STIX ``sighting`` of an indicator at the ``open`` level, or None without a count.

    It names no ``where_sighted_refs`` and no ``observed_data_refs``: who saw it
    and the evidence stay on the node.
    """
    count = sighting_count(shared.get("sightings"))
    if count is None:
        return None
    obj: StixObject = {
        "type": "sighting",
        "spec_version": "2.1",
        "id": f"sighting--{uuid.uuid5(SIGHTING_NAMESPACE, str(shared['id']))}",
        "created": indicator["created"],
        "modified": indicator["modified"],
        "count": count,
        "sighting_of_ref": indicator["id"],
        "object_marking_refs": indicator["object_marking_refs"],
    }
    first = shared.get("first_seen")
    if first is not None:
        obj["first_seen"] = indicator["created"]
        last = shared.get("last_seen")
        obj["last_seen"] = (
            max(stix_time(last), str(indicator["created"]))
            if last is not None
            else indicator["created"]
        )
    return obj


def shared_objects(shared: Mapping[str, object], *, stamp: str) -> list[StixObject]:
    """The indicator and, where the level shares a count, its sighting."""
    indicator = indicator_object(shared, stamp=stamp)
    sighting = sighting_object(shared, indicator) if "sightings" in shared else None
    return [indicator] if sighting is None else [indicator, sighting]


def indicators_from_stix(
    obj: Mapping[str, object],
    *,
    now: datetime,
    definitions: dict[str, Tlp] | None = None,
    default_tlp: Tlp = Tlp.GREEN,
    sources: tuple[str, ...] = (),
    extra_tags: tuple[str, ...] = (),
) -> list[Indicator]:
    """DTIM indicators for one STIX ``indicator`` object (one per ``OR``-ed comparison).

    Args:
        obj: the STIX indicator.
        now: the time to stamp on values whose object lacks timestamps.
        definitions: TLP markings defined in the same bundle (see
            :func:`dtim.stix.markings.tlp_of_definition`).
        default_tlp: the marking of an object that carries none.
        sources: source names to record (``taxii:feed.example``).
        extra_tags: tags added to every indicator (e.g. the feed's name).

    Raises:
        UnsupportedPatternError: the pattern is valid but not importable.
        StixError: the object is not a STIX 2.1 pattern indicator.
        ValidationError: a value or field does not pass DTIM's checks.
    """
    if obj.get("type") != "indicator":
        raise StixError(f"{obj.get('id')!r} is a {obj.get('type')!r}, not an indicator")
    if obj.get("pattern_type", "stix") != "stix":
        raise StixError(f"{obj.get('id')}: pattern_type {obj.get('pattern_type')!r} is not stix")
    pattern = obj.get("pattern")
    if not isinstance(pattern, str):
        raise StixError(f"{obj.get('id')}: no pattern")
    values = parse_pattern(pattern)
    refs = obj.get("object_marking_refs")
    tlp = tlp_from_refs(refs if isinstance(refs, list) else [], definitions) or default_tlp
    valid_from = _time(obj.get("valid_from") or obj.get("created"), now, "valid_from")
    extension = _dtim_extension(obj)
    last_seen = _time(extension.get("last_seen") or obj.get("modified"), valid_from, "last_seen")
    labels = obj.get("labels") or obj.get("indicator_types") or []
    if not isinstance(labels, list):
        raise ValidationError("labels", "must be a list of strings")
    confidence = obj.get("confidence", 50)
    custom = extension.get("custom_fields", {})
    recipients = extension.get("recipients", [])
    return [
        make_indicator(
            item.value,
            item.type,
            now=valid_from,
            confidence=confidence if isinstance(confidence, int) else 50,
            tags=[*(str(label) for label in labels), *extra_tags],
            tlp=tlp,
            recipients=[str(r) for r in recipients] if isinstance(recipients, list) else [],
            custom_fields=custom if isinstance(custom, dict) else {},
            sources=sources,
            first_seen=valid_from,
            last_seen=max(valid_from, last_seen),
        )
        for item in values
    ]


def _dtim_extension(obj: Mapping[str, object]) -> dict[str, JsonValue]:
    extensions = obj.get("extensions")
    if isinstance(extensions, Mapping):
        found = extensions.get(DTIM_EXTENSION_ID)
        if isinstance(found, dict):
            return found
    return {}


def _time(raw: object, default: datetime, field: str) -> datetime:
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise ValidationError(field, f"not a timestamp: {raw!r}")
    return parse_time(raw, field)
