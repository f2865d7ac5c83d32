"""Sightings as JSON between a sensor and its node (``POST /api/v1/sensors/sightings``).

A request carries batches in the order the sensor buffered them::

    {"batches": [{"batch_id": "<32 hex>", "created": "2026-03-01T12:00:05.000Z", "sightings": [
        {"indicator": {...Indicator.to_json()...}, "source": "ufw", "rule": "port-scan",
         "observed_at": "2026-03-01T12:00:00.000Z", "count": 12,
         "evidence": {"lines": [...], "hosts": [], "users": [], "paths": [], "details": {}}}]}]}

``created`` (optional) is when the sensor buffered the batch: the node refuses a
batch buffered too long ago to know whether it took it before. Decoding checks
every field and names the first bad one (``batches[0].sightings[3].indicator.value``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from dtim.errors import ValidationError
from dtim.model import Evidence, JsonValue, Sighting
from dtim.model.clock import iso, parse_time
from dtim.model.indicator import indicator_from_json
from dtim.model.text import NUL_REASON, holds_nul

MAX_BATCHES = 500
"""Batches in one request."""
MAX_SIGHTINGS = 10_000
"""Sightings in one batch."""
_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MAX_SOURCE = 64
_MAX_RULE = 128


@dataclass(frozen=True, slots=True)
class WireBatch:
    """One decoded batch (``created``: when the sensor buffered it, if it said)."""

    batch_id: str
    sightings: tuple[Sighting, ...]
    created: datetime | None = None


def sighting_json(sighting: Sighting) -> dict[str, JsonValue]:
    """A sighting as the sensor sends it (evidence included: it goes to its own node only)."""
    return {
        "indicator": sighting.indicator.to_json(),
        "source": sighting.source,
        "rule": sighting.rule,
        "observed_at": iso(sighting.observed_at),
        "count": sighting.count,
        "evidence": sighting.evidence.to_json(),
    }


def decode_request(document: object) -> list[WireBatch]:
    """Read a request body (parsed JSON) into batches.

    Raises:
        ValidationError: naming the first field that is missing or wrong.
    """
    if not isinstance(document, dict):
        raise ValidationError("body", "expected a JSON object")
    raw = document.get("batches")
    if not isinstance(raw, list) or not raw:
        raise ValidationError("batches", "expected a non-empty list")
    if len(raw) > MAX_BATCHES:
        raise ValidationError("batches", f"at most {MAX_BATCHES} batches per request")
    batches: list[WireBatch] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        where = f"batches[{index}]"
        if not isinstance(entry, dict):
            raise ValidationError(where, "expected an object")
        batch_id = entry.get("batch_id")
        if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
            raise ValidationError(f"{where}.batch_id", "expected 8-64 letters, digits, _ or -")
        if batch_id in seen:
            raise ValidationError(f"{where}.batch_id", "repeated in the same request")
        seen.add(batch_id)
        items = entry.get("sightings")
        if not isinstance(items, list):
            raise ValidationError(f"{where}.sightings", "expected a list")
        if len(items) > MAX_SIGHTINGS:
            raise ValidationError(f"{where}.sightings", f"at most {MAX_SIGHTINGS} per batch")
        created = entry.get("created")
        if created is not None and not isinstance(created, str):
            raise ValidationError(f"{where}.created", "expected an ISO 8601 timestamp")
        batches.append(
            WireBatch(
                batch_id,
                tuple(
                    decode_sighting(item, f"{where}.sightings[{n}]") for n, item in enumerate(items)
                ),
                None if created is None else parse_time(created, f"{where}.created"),
            )
        )
    return batches


def decode_sighting(raw: object, where: str) -> Sighting:
    """One sighting from its JSON form.

    Raises:
        ValidationError: naming the field (prefixed with ``where``).
    """
    if not isinstance(raw, dict):
        raise ValidationError(where, "expected an object")
    indicator_raw = raw.get("indicator")
    if not isinstance(indicator_raw, dict):
        raise ValidationError(f"{where}.indicator", "expected an object")
    try:
        indicator = indicator_from_json(indicator_raw)
    except ValidationError as exc:
        raise ValidationError(f"{where}.indicator.{exc.field}", exc.reason) from None
    source = _text(raw, "source", where, _MAX_SOURCE)
    rule = _text(raw, "rule", where, _MAX_RULE)
    observed = raw.get("observed_at")
    if not isinstance(observed, str):
        raise ValidationError(f"{where}.observed_at", "expected a timestamp string")
    try:
        observed_at = parse_time(observed, "observed_at")
    except ValidationError as exc:
        raise ValidationError(f"{where}.observed_at", exc.reason) from None
    count = raw.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 2**31 - 1:
        raise ValidationError(f"{where}.count", "expected a positive integer")
    return Sighting(
        indicator,
        source,
        rule,
        observed_at,
        count=count,
        evidence=_evidence(raw.get("evidence", {}), f"{where}.evidence"),
    )


def _text(raw: Mapping[str, object], name: str, where: str, limit: int) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValidationError(f"{where}.{name}", f"expected a string of 1-{limit} characters")
    if holds_nul(value):  # PostgreSQL would refuse the whole batch, again on every retry
        raise ValidationError(f"{where}.{name}", NUL_REASON)
    return value


def _evidence(raw: object, where: str) -> Evidence:
    if not isinstance(raw, dict):
        raise ValidationError(where, "expected an object")

    def strings(name: str) -> tuple[str, ...]:
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError(f"{where}.{name}", "expected a list of strings")
        return tuple(value)

    details = raw.get("details", {})
    if not isinstance(details, dict):
        raise ValidationError(f"{where}.details", "expected an object")
    return Evidence(
        lines=strings("lines"),
        hosts=strings("hosts"),
        users=strings("users"),
        paths=strings("paths"),
        details=details,
    )


def encode_request(batches: Sequence[tuple[str, list[JsonValue]]]) -> dict[str, JsonValue]:
    """The request body for ``(batch id, sightings as JSON)`` pairs, oldest first."""
    return {
        "batches": [
            {"batch_id": batch_id, "sightings": sightings} for batch_id, sightings in batches
        ]
    }
