"""Signed registry entries: statements a node makes about itself, verifiable by anyone.

A node publishes one statement at a time, signed with its Ed25519 identity over
the RFC 8785 (JCS) canonical JSON of the statement object::

    {"type": "dtim-registry-entry", "version": 1,
     "public_key": "<base64 raw key>", "endpoint": "https://node.example:3030",
     "issued_at": 1767268800, "expires_at": 1767269700,
     "metadata": {"display_name": "...", "contact": "...", "sectors": ["..."]}}

``metadata`` is present only when the node chose to publish it. A withdrawal is
the same object with ``"type": "dtim-registry-withdrawal"`` and no metadata.
The registry stores and serves the signed statement as it received it; every
consumer (nodes, other registries) checks the signature itself, so a registry
can withhold entries but cannot forge, alter or resurrect one: the newest
statement per key wins (``issued_at``), and an expired one is worthless.

Each list item a registry serves is::

    {"endpoint", "public_key", "node_id", "statement": {...}, "signature": "<base64>"}

where ``endpoint`` and ``public_key`` (the seed's fields) and ``node_id`` are
copies a consumer must find equal to the signed statement.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

import orjson

from dtim.crypto.bodysig import canonical_body
from dtim.crypto.identity import NodeIdentity, fingerprint_of, node_id_of, verify_ed25519
from dtim.errors import SignatureError, ValidationError
from dtim.model.indicator import JsonValue

STATEMENT_VERSION = 1
MAX_ENDPOINT_LENGTH = 255
MAX_DISPLAY_NAME = 64
MAX_CONTACT = 128
MAX_SECTORS = 8
MAX_SECTOR_LENGTH = 32
MAX_STATEMENT_LIFETIME = 86_400
"""Consumers refuse statements that claim to live longer than a day, whatever a registry says."""
MAX_TIMESTAMP = 2**53 - 1
"""JCS represents integers exactly only up to 2**53."""
_SECTOR = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_STATEMENT_KEYS = frozenset(
    {"type", "version", "public_key", "endpoint", "issued_at", "expires_at", "metadata"}
)
_ITEM_KEYS = ("endpoint", "public_key", "statement", "signature")


class StatementKind(StrEnum):
    """What a statement says: "list me" or "stop listing me"."""

    ENTRY = "dtim-registry-entry"
    WITHDRAWAL = "dtim-registry-withdrawal"

    @property
    def rank(self) -> int:
        """Tie-break between statements with the same ``issued_at``: a withdrawal wins."""
        return 1 if self is StatementKind.WITHDRAWAL else 0


@dataclass(frozen=True, slots=True)
class Profile:
    """Optional human metadata a node may publish; empty (nothing published) by default."""

    display_name: str | None = None
    contact: str | None = None
    sectors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_text("metadata.display_name", self.display_name, MAX_DISPLAY_NAME)
        _check_text("metadata.contact", self.contact, MAX_CONTACT)
        if len(self.sectors) > MAX_SECTORS:
            raise ValidationError("metadata.sectors", f"at most {MAX_SECTORS} sectors")
        for sector in self.sectors:
            if len(sector) > MAX_SECTOR_LENGTH or not _SECTOR.match(sector):
                raise ValidationError(
                    "metadata.sectors",
                    f"{sector[:40]!r}: use lowercase letters, digits and '-', "
                    f"at most {MAX_SECTOR_LENGTH} characters",
                )

    @property
    def empty(self) -> bool:
        """True when nothing would be published."""
        return self.display_name is None and self.contact is None and not self.sectors

    def to_json(self) -> dict[str, JsonValue]:
        """Only the fields that are set."""
        out: dict[str, JsonValue] = {}
        if self.display_name is not None:
            out["display_name"] = self.display_name
        if self.contact is not None:
            out["contact"] = self.contact
        if self.sectors:
            out["sectors"] = list(self.sectors)
        return out


def _check_text(field: str, value: str | None, limit: int) -> None:
    if value is None:
        return
    if not value.strip() or len(value) > limit or not value.isprintable():
        raise ValidationError(field, f"printable text of 1 to {limit} characters")


@dataclass(frozen=True, slots=True)
class Statement:
    """What a node states about itself (unsigned)."""

    kind: StatementKind
    public_key: str
    endpoint: str
    issued_at: int
    expires_at: int
    profile: Profile = field(default_factory=Profile)

    @property
    def public_key_raw(self) -> bytes:
        """The 32 raw key bytes (the key was checked on construction by :func:`parse_statement`)."""
        return base64.b64decode(self.public_key)

    @property
    def node_id(self) -> str:
        """The node id the key names."""
        return node_id_of(self.public_key_raw)

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` fingerprint people compare before approving."""
        return fingerprint_of(self.public_key_raw)

    def to_json(self) -> dict[str, JsonValue]:
        """The statement object, as signed."""
        out: dict[str, JsonValue] = {
            "type": self.kind.value,
            "version": STATEMENT_VERSION,
            "public_key": self.public_key,
            "endpoint": self.endpoint,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }
        if self.kind is StatementKind.ENTRY and not self.profile.empty:
            out["metadata"] = self.profile.to_json()
        return out


@dataclass(frozen=True, slots=True)
class SignedStatement:
    """A statement with its signature, exactly as the node produced it."""

    statement: Statement
    signature: str
    """Standard base64 of the 64-byte Ed25519 signature."""
    raw: Mapping[str, JsonValue]
    """The statement object as received (what the signature covers, via JCS)."""

    @property
    def node_id(self) -> str:
        """The signer's node id."""
        return self.statement.node_id

    def item(self) -> dict[str, JsonValue]:
        """The list item served by registries."""
        return {
            "endpoint": self.statement.endpoint,
            "public_key": self.statement.public_key,
            "node_id": self.node_id,
            "statement": dict(self.raw),
            "signature": self.signature,
        }

    def document(self) -> str:
        """The list item as JSON text (what a registry stores and serves as is)."""
        return orjson.dumps(self.item()).decode("utf-8")

    def order_key(self) -> tuple[int, int, str]:
        """Newest statement wins; ties go to a withdrawal, then to the larger signature."""
        return (self.statement.issued_at, self.statement.kind.rank, self.signature)


def normalize_endpoint(raw: str) -> str:
    """The canonical form of a node endpoint: ``https://host[:port][/path]``, lowercase host.

    Raises:
        ValidationError: not an https URL with a host, or with credentials, query or fragment.
    """
    text = raw.strip()
    if not text or len(text) > MAX_ENDPOINT_LENGTH or not text.isprintable() or " " in text:
        raise ValidationError(
            "endpoint", f"expected an https:// URL of at most {MAX_ENDPOINT_LENGTH} characters"
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValidationError("endpoint", f"{text[:80]!r} is not a valid URL") from None
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValidationError("endpoint", f"{text[:80]!r}: expected https:// with a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("endpoint", "must not contain credentials")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValidationError("endpoint", "must not contain a query or fragment")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"https://{netloc}{path}"


def sign_statement(statement: Statement, identity: NodeIdentity) -> SignedStatement:
    """Sign ``statement`` with ``identity`` (which must own ``statement.public_key``).

    Raises:
        SignatureError: the statement names another key than the identity's.
    """
    if statement.public_key != identity.public_key_b64:
        raise SignatureError("a node can only sign statements about its own key")
    raw = statement.to_json()
    signature = base64.b64encode(identity.sign(canonical_body(raw))).decode("ascii")
    return SignedStatement(statement, signature, raw)


def parse_statement(raw: object) -> Statement:
    """Read a statement object (no signature check).

    Raises:
        ValidationError: a field is missing, of the wrong type, or out of range.
    """
    if not isinstance(raw, dict):
        raise ValidationError("statement", "expected a JSON object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise ValidationError("statement", f"unknown fields {sorted(unknown)}")
    try:
        kind = StatementKind(str(raw.get("type")))
    except ValueError:
        raise ValidationError(
            "statement.type", f"expected one of {[k.value for k in StatementKind]}"
        ) from None
    if raw.get("version") != STATEMENT_VERSION or isinstance(raw.get("version"), bool):
        raise ValidationError(
            "statement.version", f"only version {STATEMENT_VERSION} is understood"
        )
    public_key = _public_key(raw.get("public_key"), "statement.public_key")
    endpoint = raw.get("endpoint")
    if not isinstance(endpoint, str):
        raise ValidationError("statement.endpoint", "expected a string")
    if normalize_endpoint(endpoint) != endpoint:
        raise ValidationError(
            "statement.endpoint",
            f"not in canonical form (expected {normalize_endpoint(endpoint)!r})",
        )
    issued_at = _timestamp(raw.get("issued_at"), "statement.issued_at")
    expires_at = _timestamp(raw.get("expires_at"), "statement.expires_at")
    if expires_at <= issued_at:
        raise ValidationError("statement.expires_at", "must be later than issued_at")
    profile = Profile()
    if "metadata" in raw:
        if kind is StatementKind.WITHDRAWAL:
            raise ValidationError("statement.metadata", "a withdrawal carries no metadata")
        profile = _profile(raw["metadata"])
    return Statement(kind, public_key, endpoint, issued_at, expires_at, profile)


def _public_key(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "expected a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(field, "not valid base64") from None
    if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != value:
        raise ValidationError(field, "expected the standard base64 of a 32-byte Ed25519 key")
    return value


def _timestamp(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_TIMESTAMP:
        raise ValidationError(field, "expected a positive integer (Unix seconds)")
    return value


def _profile(value: object) -> Profile:
    if not isinstance(value, dict) or not value:
        raise ValidationError(
            "statement.metadata", "expected a non-empty object (omit it to publish nothing)"
        )
    unknown = set(value) - {"display_name", "contact", "sectors"}
    if unknown:
        raise ValidationError("statement.metadata", f"unknown fields {sorted(unknown)}")
    name, contact, sectors = (
        value.get("display_name"),
        value.get("contact"),
        value.get("sectors", []),
    )
    if name is not None and not isinstance(name, str):
        raise ValidationError("metadata.display_name", "expected a string")
    if contact is not None and not isinstance(contact, str):
        raise ValidationError("metadata.contact", "expected a string")
    if not isinstance(sectors, list) or not all(isinstance(s, str) for s in sectors):
        raise ValidationError("metadata.sectors", "expected a list of strings")
    if "sectors" in value and not sectors:
        raise ValidationError("metadata.sectors", "omit it rather than publish an empty list")
    return Profile(name, contact, tuple(sectors))


def verify_statement(
    raw: object, signature: object, *, now: int, max_lifetime: int, skew: int
) -> SignedStatement:
    """Check a signed statement: well-formed, signed by its own key, current.

    Args:
        raw: the statement object as received.
        signature: its base64 signature.
        now: the current time, Unix seconds.
        max_lifetime: longest accepted ``expires_at - issued_at``.
        skew: accepted clock difference for ``issued_at`` in the future.

    Raises:
        ValidationError: malformed, issued in the future, too long-lived, or expired.
        SignatureError: the signature is missing, malformed or not by the stated key.
    """
    if not isinstance(raw, dict):
        raise ValidationError("statement", "expected a JSON object")
    statement = parse_statement(raw)
    text, encoded = _signature_bytes(signature)
    try:
        verify_ed25519(statement.public_key, encoded, canonical_body(raw))
    except SignatureError as exc:
        raise SignatureError(f"statement {exc.reason}") from None
    if statement.issued_at > now + skew:
        raise ValidationError("statement.issued_at", "lies in the future (check the node's clock)")
    if statement.expires_at - statement.issued_at > max_lifetime:
        raise ValidationError("statement.expires_at", f"lifetime longer than {max_lifetime} s")
    if statement.expires_at <= now:
        raise ValidationError("statement.expires_at", "statement expired")
    return SignedStatement(statement, text, raw)


def _signature_bytes(signature: object) -> tuple[str, bytes]:
    if not isinstance(signature, str) or not signature:
        raise SignatureError("missing statement signature")
    try:
        decoded = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed statement signature: not base64") from None
    if len(decoded) != 64:
        raise SignatureError("malformed statement signature: not 64 bytes")
    return signature, decoded


def verify_item(item: object, *, now: int, max_lifetime: int, skew: int) -> SignedStatement:
    """Check one list item a registry served: its signed statement and the copies beside it.

    Raises:
        ValidationError: the item or statement is malformed, stale or expired.
        SignatureError: the signature does not verify, or the copies disagree with it.
    """
    if not isinstance(item, dict) or any(key not in item for key in _ITEM_KEYS):
        raise ValidationError("entry", f"expected an object with {', '.join(_ITEM_KEYS)}")
    signed = verify_statement(
        item["statement"], item["signature"], now=now, max_lifetime=max_lifetime, skew=skew
    )
    statement = signed.statement
    if item["endpoint"] != statement.endpoint or item["public_key"] != statement.public_key:
        raise SignatureError("entry does not match its signed statement")
    if "node_id" in item and item["node_id"] != statement.node_id:
        raise SignatureError("entry node id does not match its signed key")
    return signed
