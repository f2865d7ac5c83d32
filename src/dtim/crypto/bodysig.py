"""The gossip body's own ``signature`` field (kept from the seed's API contract).

``signature`` is the standard-base64 Ed25519 signature, by the sender's identity,
of the RFC 8785 (JCS) canonical JSON of the body without its ``signature`` member.
It authenticates the content itself, independently of the HTTP message signature,
so a body can be checked again after it was stored or relayed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

import rfc8785

from dtim.crypto.identity import NodeIdentity, verify_ed25519
from dtim.errors import SignatureError
from dtim.model.indicator import JsonValue

SIGNATURE_FIELD = "signature"


def canonical_body(body: Mapping[str, JsonValue]) -> bytes:
    """RFC 8785 canonical JSON of ``body`` without its ``signature`` member.

    Raises:
        SignatureError: the body holds values JCS cannot represent (NaN, huge integers).
    """
    unsigned = {key: value for key, value in body.items() if key != SIGNATURE_FIELD}
    try:
        return rfc8785.dumps(unsigned)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise SignatureError(f"body cannot be canonicalised: {exc}") from None


def sign_body(body: Mapping[str, JsonValue], identity: NodeIdentity) -> dict[str, JsonValue]:
    """A copy of ``body`` with its ``signature`` field set."""
    signature = base64.b64encode(identity.sign(canonical_body(body))).decode("ascii")
    return {**body, SIGNATURE_FIELD: signature}


def verify_body(body: Mapping[str, JsonValue], public_key_b64: str) -> None:
    """Check the ``signature`` field of ``body`` against the sender's public key.

    Raises:
        SignatureError: the field is missing or malformed, or does not verify.
    """
    encoded = body.get(SIGNATURE_FIELD)
    if not isinstance(encoded, str) or not encoded:
        raise SignatureError("missing body signature")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed body signature: not base64") from None
    if len(signature) != 64:
        raise SignatureError("malformed body signature: not 64 bytes")
    try:
        verify_ed25519(public_key_b64, signature, canonical_body(body))
    except SignatureError as exc:
        raise SignatureError(f"body {exc.reason}") from None
