"""Reports and tombstones: the immutable items the mesh reconciles.

A **report** is one origin's claim about one indicator, exactly as it may
leave the origin: the indicator, its marking and recipients, a coarsened
time bucket, the confidence the origin claims, tags (only at the ``open``
privacy level), the origin's blinded reporter token and an expiry. It holds
no origin key, signature or salt: signatures authenticate the sending hop
only, so a report looks the same whoever relays it.

A **tombstone** is an analyst's ``false_positive`` / ``revoked`` verdict,
signed by the analyst's node and expiring; it wins over reports while valid.
It carries the issuer's public key (the issuer id is that key's hash), so any
node can check it without knowing the issuer, and every node relays it.

Both are identified by the SHA-256 of their canonical encoding (RFC 8785
JSON) and sorted by ``(timestamp, id)`` for range-based reconciliation.
Decaying confidence is derived on read and never part of a hashed item.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import NewType

import orjson

from dtim.aging import Verdict
from dtim.crypto.identity import node_id_of, verify_ed25519
from dtim.errors import SignatureError, ValidationError
from dtim.model.ids import IndicatorId, indicator_id
from dtim.model.indicator import JsonObject, validate_confidence
from dtim.model.tlp import Tlp

ItemId = NewType("ItemId", bytes)
"""The 32-byte SHA-256 of an item's canonical encoding."""

FORMAT_VERSION = 1
TOKEN_HEX_LENGTH = 32
MAX_TIMESTAMP = 2**62
"""Upper limit of any timestamp field (seconds); far beyond any real date."""
MAX_VALUE_LENGTH = 4096
MAX_LISTED = 64
MAX_SIGNATURE_LENGTH = 512

_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_NODE_ID = re.compile(r"^[0-9a-f]{64}$")
_SUPPRESSING = frozenset({Verdict.FALSE_POSITIVE, Verdict.REVOKED})


def canonical(document: JsonObject) -> bytes:
    """RFC 8785 canonical JSON of a document made of strings, integers, lists and objects.

    For that subset orjson with sorted keys writes exactly the RFC 8785 form
    (a property test checks it against the ``rfc8785`` package) and is two
    orders of magnitude faster, which the simulation needs.
    """
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def _check_timestamp(field: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMESTAMP:
        raise ValidationError(field, f"must be whole seconds since 1970, got {value!r}")


def _check_marking(tlp: Tlp, recipients: tuple[str, ...]) -> None:
    if recipients != tuple(sorted(set(recipients))) or any(
        not r or len(r) > 256 for r in recipients
    ):
        raise ValidationError("recipients", "must be sorted, distinct, non-empty names")
    if len(recipients) > MAX_LISTED:
        raise ValidationError("recipients", f"more than {MAX_LISTED} recipients")
    if tlp.needs_recipients and not recipients:
        raise ValidationError("recipients", f"TLP:{tlp.value.upper()} needs named recipients")
    if not tlp.needs_recipients and recipients:
        raise ValidationError("recipients", f"TLP:{tlp.value.upper()} takes no recipients")


@dataclass(frozen=True, slots=True)
class Report:
    """One origin's immutable claim about one indicator.

    Attributes:
        indicator: ``indicator_id(type, value)``; checked on construction.
        type: the indicator type.
        value: the normalised value.
        tlp: the marking; AMBER and RED need ``recipients``.
        recipients: sorted peer ids or group names (AMBER/RED only).
        bucket: start of the coarsened time bucket of the sighting (Unix seconds).
        confidence: what the origin claims, 0-100 (capped by corroboration on read).
        tags: sorted tags, empty below the ``open`` privacy level.
        reporter: the origin's blinded token for this indicator (32 hex digits).
        expires: Unix seconds after which the report is dead everywhere.
    """

    indicator: IndicatorId
    type: str
    value: str
    tlp: Tlp
    recipients: tuple[str, ...]
    bucket: int
    confidence: int
    tags: tuple[str, ...]
    reporter: str
    expires: int

    def __post_init__(self) -> None:
        if not self.value or len(self.value) > MAX_VALUE_LENGTH:
            raise ValidationError("value", f"must be 1-{MAX_VALUE_LENGTH} characters")
        if indicator_id(self.type, self.value) != self.indicator:
            raise ValidationError("indicator", "does not match the type and value")
        _check_marking(self.tlp, self.recipients)
        _check_timestamp("bucket", self.bucket)
        _check_timestamp("expires", self.expires)
        if self.expires <= self.bucket:
            raise ValidationError("expires", "must be later than the time bucket")
        validate_confidence(self.confidence)
        if self.tags != tuple(sorted(set(self.tags))) or len(self.tags) > MAX_LISTED:
            raise ValidationError("tags", f"must be sorted, distinct, at most {MAX_LISTED}")
        if not _TOKEN.match(self.reporter):
            raise ValidationError("reporter", f"must be {TOKEN_HEX_LENGTH} lowercase hex digits")

    @property
    def timestamp(self) -> int:
        """The sort timestamp: the time bucket."""
        return self.bucket

    def to_json(self) -> JsonObject:
        """The wire and hashing form."""
        return {
            "v": FORMAT_VERSION,
            "kind": "report",
            "indicator": self.indicator,
            "type": self.type,
            "value": self.value,
            "tlp": self.tlp.value,
            "recipients": list(self.recipients),
            "bucket": self.bucket,
            "confidence": self.confidence,
            "tags": list(self.tags),
            "reporter": self.reporter,
            "expires": self.expires,
        }


@dataclass(frozen=True, slots=True)
class Tombstone:
    """An analyst's signed, expiring ``false_positive`` or ``revoked`` verdict.

    Attributes:
        indicator: the indicator the verdict is about.
        verdict: ``false_positive`` or ``revoked``.
        tlp: marking of the tombstone itself (it names the indicator).
        recipients: as for reports.
        issued: when the analyst decided (Unix seconds; the sort timestamp).
        expires: when the verdict stops applying.
        issuer: the signing node's id: hex SHA-256 of ``issuer_key`` (:func:`verify_tombstone`).
        issuer_key: the signing node's raw Ed25519 public key, standard base64 (44 characters).
        signature: base64 signature over :meth:`signed_payload`.
    """

    indicator: IndicatorId
    verdict: Verdict
    tlp: Tlp
    recipients: tuple[str, ...]
    issued: int
    expires: int
    issuer: str
    issuer_key: str
    signature: str

    def __post_init__(self) -> None:
        if self.verdict not in _SUPPRESSING:
            raise ValidationError("verdict", "a tombstone carries false_positive or revoked")
        _check_marking(self.tlp, self.recipients)
        _check_timestamp("issued", self.issued)
        _check_timestamp("expires", self.expires)
        if self.expires <= self.issued:
            raise ValidationError("expires", "must be later than issued")
        if not _NODE_ID.match(self.issuer):
            raise ValidationError("issuer", "must be a node id (64 lowercase hex digits)")
        _check_public_key(self.issuer_key)
        if len(self.signature) > MAX_SIGNATURE_LENGTH:
            raise ValidationError("signature", f"longer than {MAX_SIGNATURE_LENGTH} characters")

    @property
    def timestamp(self) -> int:
        """The sort timestamp: when it was issued."""
        return self.issued

    def unsigned_json(self) -> JsonObject:
        """Every field except the signature."""
        return {
            "v": FORMAT_VERSION,
            "kind": "tombstone",
            "indicator": self.indicator,
            "verdict": self.verdict.value,
            "tlp": self.tlp.value,
            "recipients": list(self.recipients),
            "issued": self.issued,
            "expires": self.expires,
            "issuer": self.issuer,
            "issuer_key": self.issuer_key,
        }

    def signed_payload(self) -> bytes:
        """The exact bytes the issuer signs: canonical JSON without the signature."""
        return canonical(self.unsigned_json())

    def to_json(self) -> JsonObject:
        """The wire and hashing form (the signature included)."""
        return {**self.unsigned_json(), "signature": self.signature}


def _check_public_key(value: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error
        raise ValidationError("issuer_key", "is not standard base64") from None
    # The canonical base64 only: another spelling of the same key would give another item id.
    if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != value:
        raise ValidationError("issuer_key", "must be the base64 of a 32-byte Ed25519 public key")


def verify_tombstone(tombstone: Tombstone) -> bool:
    """True when the tombstone's own key names its issuer and signed it.

    Needs no key of this node's: the issuer id is the hash of the key, so a
    relayed tombstone is checked the same way as one taken from its issuer.
    """
    raw = base64.b64decode(tombstone.issuer_key)
    if node_id_of(raw) != tombstone.issuer:
        return False
    try:
        signature = base64.b64decode(tombstone.signature, validate=True)
        verify_ed25519(tombstone.issuer_key, signature, tombstone.signed_payload())
    except (ValueError, SignatureError):  # not base64, or a bad signature
        return False
    return True


Item = Report | Tombstone
"""Anything that takes part in reconciliation."""


def encode(item: Item) -> bytes:
    """Canonical bytes of an item (what is hashed and sent)."""
    return canonical(item.to_json())


def item_id(item: Item) -> ItemId:
    """The item's 32-byte id: SHA-256 of its canonical encoding."""
    return ItemId(hashlib.sha256(encode(item)).digest())


def item_key(item: Item) -> tuple[int, bytes]:
    """The reconciliation sort key ``(timestamp, id)``."""
    return (item.timestamp, item_id(item))
