"""``Shareable``: the sanitized copy of an indicator, the only thing allowed to leave.

Gossip payloads, the public endpoint, TAXII and exports accept ``Shareable``
and nothing else. Only :mod:`dtim.privacy.filter` can build one: the
constructor always refuses (the filter builds them with ``tuple.__new__``),
and the tuple helpers that would build a modified copy (``_replace``,
``_make``, pickling) refuse too. This guards against mistakes,
not against code that deliberately calls ``tuple.__new__``.

It is an immutable named tuple because one is built for every indicator that
leaves (a million per export): that is five times cheaper than a frozen dataclass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, NoReturn, final

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

_ISO: dict[datetime, str] = {}
_ISO_LIMIT = 10_000


class _Fields(NamedTuple):
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


@final
class Shareable(_Fields):
    """A sanitized indicator for one destination; fields absent at its level are None.

    Do not construct it: ask :class:`dtim.privacy.PrivacyFilter` for one.
    """

    __slots__ = ()

    def __new__(cls, *fields: Any) -> Shareable:
        """Refuse: only the privacy filter makes these.

        Raises:
            PrivacyError: always.
        """
        raise PrivacyError("a Shareable can only be made by the privacy filter")

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> NoReturn:  # type: ignore[override]  # refuses by design
        raise PrivacyError("a Shareable can only be made by the privacy filter")

    def _replace(self, **changes: Any) -> NoReturn:
        raise PrivacyError("a Shareable cannot be modified; filter the indicator again")

    def __copy__(self) -> Shareable:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Shareable:
        return self

    def __reduce__(self) -> NoReturn:
        raise PrivacyError("a Shareable cannot be pickled; send to_bytes() instead")

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
        level = self.level
        if level is PrivacyLevel.STRICT:
            return out
        out["confidence"] = self.confidence
        out["first_seen"] = _iso(self.first_seen)
        out["last_seen"] = _iso(self.last_seen)
        out["valid_until"] = _iso(self.valid_until)
        if level is PrivacyLevel.OPEN:
            out["tags"] = list(self.tags or ())
            out["sightings"] = self.sightings
            out["custom_fields"] = self.custom_fields_json()
        return out

    def to_bytes(self) -> bytes:
        """Compact, key-sorted UTF-8 JSON of :meth:`to_json` (what goes on the wire).

        Byte for byte what ``json.dumps(to_json(), sort_keys=True,
        separators=(",", ":"), ensure_ascii=False)`` gives, written directly:
        exports serialise every indicator, and this is several times faster.
        """
        head = f'"id":{_quote(self.id)},'
        tail = f'"tlp":"{self.tlp.value}","type":{_quote(self.type)},'
        value = f'"value":{_quote(self.value)}}}'
        level = self.level
        if level is PrivacyLevel.STRICT:
            return f"{{{head}{tail}{value}".encode()
        confidence = "null" if self.confidence is None else str(self.confidence)
        first = f'"first_seen":{_iso_json(self.first_seen)},'
        last = f'"last_seen":{_iso_json(self.last_seen)},'
        until = f'"valid_until":{_iso_json(self.valid_until)},'
        if level is PrivacyLevel.MODERATE:
            return f'{{"confidence":{confidence},{first}{head}{last}{tail}{until}{value}'.encode()
        custom = ",".join(f"{_quote(name)}:{text}" for name, text in self.custom_fields or ())
        tags = ",".join(_quote(tag) for tag in self.tags or ())
        sightings = "null" if self.sightings is None else str(self.sightings)
        return (
            f'{{"confidence":{confidence},"custom_fields":{{{custom}}},{first}{head}{last}'
            f'"sightings":{sightings},"tags":[{tags}],{tail}{until}{value}'
        ).encode()

    def custom_fields_json(self) -> dict[str, JsonValue]:
        """The shared custom fields as plain JSON (empty below ``open``)."""
        return {name: json.loads(text) for name, text in self.custom_fields or ()}


_quote = json.encoder.encode_basestring  # the C encoder json.dumps uses
_ISO_JSON: dict[datetime, str] = {}


def _iso_json(moment: datetime | None) -> str:
    if moment is None:
        return "null"
    text = _ISO_JSON.get(moment)
    if text is None:
        if len(_ISO_JSON) >= _ISO_LIMIT:
            _ISO_JSON.clear()
        text = _ISO_JSON[moment] = f'"{iso(moment)}"'
    return text


def _iso(moment: datetime | None) -> str | None:
    # Coarsened instants repeat, and formatting is the costly part of serialising.
    if moment is None:
        return None
    text = _ISO.get(moment)
    if text is None:
        if len(_ISO) >= _ISO_LIMIT:
            _ISO.clear()
        text = _ISO[moment] = iso(moment)
    return text


def frozen_fields(fields: Mapping[str, JsonValue]) -> tuple[tuple[str, str], ...]:
    """Custom fields as a Shareable holds them: sorted ``(name, compact JSON text)`` pairs."""
    return tuple(
        sorted(
            (
                name,
                json.dumps(
                    value,
                    sort_keys=True,
                    separators=(",", ":"),
                    ensure_ascii=False,
                    allow_nan=False,
                ),
            )
            for name, value in fields.items()
        )
    )
