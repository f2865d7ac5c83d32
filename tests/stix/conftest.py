"""Shared helpers for the STIX tests: shared-indicator factories and the OASIS validator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from stix2validator import ValidationOptions, validate_string

from dtim.model import Indicator, make_indicator
from dtim.model.clock import iso

NOW = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)

KNOWN_WARNINGS = frozenset({"103", "303"})
"""Validator warnings DTIM accepts, by check code:

103: ids are uuid5, not uuid4 — on purpose, so an indicator has the same STIX
     id on every node (STIX 2.1 §2.9 allows any UUID; the validator prefers v4).
303: indicators carry ``name`` but no ``description`` — a description would
     either be empty boilerplate or leak context the privacy level withholds.
"""

SAMPLES: list[tuple[str, str | None]] = [
    ("203.0.113.7", None),
    ("2001:db8::1", None),
    ("192.0.2.0/24", "cidr"),
    ("2001:db8::/32", "cidr"),
    ("evil.example", None),
    ("http://evil.example/a'b\\c?x=1", None),
    ("mallory@evil.example", None),
    ("d41d8cd98f00b204e9800998ecf8427e", None),
    ("da39a3ee5e6b4b0d3255bfef95601890afd80709", None),
    ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", None),
    (
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        None,
    ),
]


def sample_indicator(value: str, type_: str | None = None, **overrides: object) -> Indicator:
    """An indicator with tags, custom fields and sightings."""
    fields: dict[str, object] = {
        "now": NOW,
        "confidence": 85,
        "tags": ["ssh-bruteforce", "botnet"],
        "custom_fields": {"asn": 64500},
        "sightings": 12,
        "first_seen": NOW - timedelta(days=2),
        "last_seen": NOW,
    }
    fields.update(overrides)
    return make_indicator(value, type_, **fields)  # type: ignore[arg-type]


def shared_form(indicator: Indicator, level: str = "open") -> dict[str, object]:
    """The privacy filter's JSON form at ``level`` (keys as dtim.privacy.LEVEL_FIELDS)."""
    out: dict[str, object] = {
        "id": indicator.id,
        "type": indicator.type,
        "value": indicator.value,
        "tlp": indicator.tlp.value,
    }
    if level in ("moderate", "open"):
        out.update(
            confidence=indicator.confidence,
            first_seen=iso(indicator.first_seen),
            last_seen=iso(indicator.last_seen),
            valid_until=iso(indicator.last_seen + timedelta(days=30)),
        )
    if level == "open":
        out.update(
            tags=list(indicator.tags), sightings=10, custom_fields=dict(indicator.custom_fields)
        )
    return out


def validate(document: object) -> list[str]:
    """Run OASIS's stix2-validator; returns error messages, fails on unknown warnings."""
    results = validate_string(orjson.dumps(document).decode(), ValidationOptions(version="2.1"))
    errors: list[str] = []
    for result in results if isinstance(results, list) else [results]:
        for item in [result, *getattr(result, "object_results", [])]:
            errors.extend(str(e) for e in getattr(item, "errors", []))
            for warning in getattr(item, "warnings", []):
                code = str(warning).split("{", 1)[-1].split("}", 1)[0]
                assert code in KNOWN_WARNINGS, f"unexpected validator warning: {warning}"
    return errors
