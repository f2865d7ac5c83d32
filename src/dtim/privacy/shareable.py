"""``Shareable``: the sanitized copy of an indicator, the only thing allowed to leave.

Gossip payloads, the public endpoint, TAXII and exports accept ``Shareable``
and nothing else. Only :mod:`dtim.privacy.filter` can build one: the
constructor demands a private token, and :func:`dataclasses.replace` refuses
to copy one without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import InitVar, dataclass
from datetime import datetime
from typing import final

from dtim.errors import PrivacyError
from dtim.model import JsonObject, JsonValue, Tlp
from dtim.model.clock import iso
from dtim.privacy.policy import PrivacyLevel

STRICT_FIELDS = ("id", "type", "value", "tlp")
MODERATE_FIELDS = (*STRICT_FIELDS, "confidence", "first_seen", "last_seen", "valid_until")
OPEN_FIELDS = (*MODERATE_FIELDS, "tags", "sightings", "custom_fields")
LEVEL_FIELDS: dict[PrivacyLevel, tuple[str, ...]] = {
    PrivacyLevel.STRICT: STRICT_FIELDS,
    PrivacyLevel.MODERATE: MODERATE_FIELDS,
    PrivacyLevel.OPEN: OPEN_FIELDS,
}
"""The exact JSON keys a :class:`Shareable` has at each level."""


class _Token:
    """Proof that the privacy filter built the object."""

    __slots__ = ()


_FILTER_TOKEN = _Token()


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Shareable:
    """A sanitized indicator for one destination; fields absent at its level are None.

    Do not construct it: ask :class:`dtim.privacy.PrivacyFilter` for one.
    """

    id: str
    type: str
    value: str
    tlp: Tlp
    level: PrivacyLevel
    confidence: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    valid_until: datetime | None
    tags: tuple[str, ...] | None
    sightings: int | None
    custom_fields: tuple[tuple[str, str], ...] | None
    """Sorted ``(name, canonical JSON text)`` pairs: immutable, and exact on the way out."""
    token: InitVar[_Token]

    def __post_init__(self, token: _Token) -> None:
        if token is not _FILTER_TOKEN:
            raise PrivacyError("a Shareable can only be made by the privacy filter")

    def to_json(self) -> JsonObject:
        """The payload: exactly the keys of :data:`LEVEL_FIELDS` for this level.

        ``valid_until`` is null when aging gave none.
        """
        out: JsonObject = {
            "id": self.id,
            "type": self.type,
            "value": self.value,
            "tlp": self.tlp.value,
        }
        if self.level is PrivacyLevel.STRICT:
            return out
        out["confidence"] = self.confidence
        out["first_seen"] = None if self.first_seen is None else iso(self.first_seen)
        out["last_seen"] = None if self.last_seen is None else iso(self.last_seen)
        out["valid_until"] = None if self.valid_until is None else iso(self.valid_until)
        if self.level is PrivacyLevel.OPEN:
            out["tags"] = list(self.tags or ())
            out["sightings"] = self.sightings
            out["custom_fields"] = self.custom_fields_json()
        return out

    def to_bytes(self) -> bytes:
        """Compact, key-sorted UTF-8 JSON of :meth:`to_json` (what goes on the wire)."""
        return json.dumps(
            self.to_json(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode()

    def custom_fields_json(self) -> dict[str, JsonValue]:
        """The shared custom fields as plain JSON (empty below ``open``)."""
        return {name: json.loads(text) for name, text in self.custom_fields or ()}


def _issue(
    *,
    id: str,
    type: str,
    value: str,
    tlp: Tlp,
    level: PrivacyLevel,
    confidence: int | None = None,
    first_seen: datetime | None = None,
    last_seen: datetime | None = None,
    valid_until: datetime | None = None,
    tags: tuple[str, ...] | None = None,
    sightings: int | None = None,
    custom_fields: Mapping[str, JsonValue] | None = None,
) -> Shareable:
    """Package-private: only :mod:`dtim.privacy.filter` calls this, after every check."""
    return Shareable(
        id=id,
        type=type,
        value=value,
        tlp=tlp,
        level=level,
        confidence=confidence,
        first_seen=first_seen,
        last_seen=last_seen,
        valid_until=valid_until,
        tags=tags,
        sightings=sightings,
        custom_fields=None
        if custom_fields is None
        else tuple(sorted((name, _canonical(field)) for name, field in custom_fields.items())),
        token=_FILTER_TOKEN,
    )


def _canonical(value: JsonValue) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
