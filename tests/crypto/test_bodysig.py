"""The gossip body's ``signature`` field over RFC 8785 canonical JSON."""

from __future__ import annotations

import base64

import pytest

from dtim.crypto.bodysig import canonical_body, sign_body, verify_body
from dtim.crypto.identity import NodeIdentity
from dtim.errors import SignatureError
from dtim.model.indicator import JsonValue


def test_sign_and_verify_ignoring_key_order() -> None:
    identity = NodeIdentity.generate()
    body: dict[str, JsonValue] = {
        "indicators": [{"value": "203.0.113.9", "type": "ipv4", "confidence": 80}],
        "v": 1.5,
    }
    signed = sign_body(body, identity)
    reordered: dict[str, JsonValue] = {
        "v": 1.5,
        "signature": signed["signature"],
        "indicators": body["indicators"],
    }
    verify_body(reordered, identity.public_key_b64)
    assert canonical_body(signed) == (
        b'{"indicators":[{"confidence":80,"type":"ipv4","value":"203.0.113.9"}],"v":1.5}'
    )


def test_tampered_or_missing_signature() -> None:
    identity = NodeIdentity.generate()
    signed = sign_body({"indicators": []}, identity)
    with pytest.raises(SignatureError, match="body bad signature"):
        verify_body({**signed, "indicators": [1]}, identity.public_key_b64)
    with pytest.raises(SignatureError, match="missing body signature"):
        verify_body({"indicators": []}, identity.public_key_b64)
    with pytest.raises(SignatureError, match="not base64"):
        verify_body({**signed, "signature": "!!"}, identity.public_key_b64)
    with pytest.raises(SignatureError, match="not 64 bytes"):
        verify_body(
            {**signed, "signature": base64.b64encode(b"x").decode()}, identity.public_key_b64
        )
    with pytest.raises(SignatureError, match="bad signature"):
        verify_body(signed, NodeIdentity.generate().public_key_b64)
    with pytest.raises(SignatureError, match="cannot be canonicalised"):
        sign_body({"n": 2**60}, identity)
