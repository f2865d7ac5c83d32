"""Sensor tokens: ``dtims_<id>_<secret>``; the node keeps the id and the SHA-256 of the secret.

The secret is 256 random bits, so a plain SHA-256 is enough to keep a stolen
database from yielding usable tokens; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "dtims"
_ID = re.compile(r"^[0-9a-f]{16}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_UNKNOWN = hashlib.sha256(b"dtim-no-such-sensor").hexdigest()


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly made token: shown once; the node stores ``token_id`` and ``secret_hash``."""

    token_id: str
    token: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    """SHA-256 (hex) of a token's secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token() -> NewToken:
    """A new random sensor token."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, f"{PREFIX}_{token_id}_{secret}", hash_secret(secret))


def split_token(token: str) -> tuple[str, str] | None:
    """``(token id, secret)`` of a well-formed token, else None."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not _ID.match(token_id) or len(secret) < 16:
        return None
    return token_id, secret


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Constant-time check of ``secret`` against a stored hash (None: unknown sensor)."""
    expected = stored_hash if stored_hash is not None else _UNKNOWN
    return hmac.compare_digest(hash_secret(secret), expected) and stored_hash is not None


def valid_name(name: str) -> bool:
    """Sensor names: 1-64 letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit."""
    return bool(_NAME.match(name))
