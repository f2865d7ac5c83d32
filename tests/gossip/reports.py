"""Factories for gossip tests: reports, tombstones and a stand-in signer."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from dtim.aging import Verdict
from dtim.gossip.corroboration import reporter_token
from dtim.gossip.report import Report, Tombstone
from dtim.model import indicator_id
from dtim.model.tlp import Tlp

BUCKET = 1_772_366_400  # 2026-03-01T12:00:00Z
DAY = 86400
ISSUER_KEYS = {"node-a": b"a" * 32, "node-b": b"b" * 32}


def make_report(value: str = "203.0.113.7", type_: str = "ipv4", **overrides: Any) -> Report:
    """A valid report; any field can be overridden."""
    indicator = indicator_id(type_, value)
    fields: dict[str, Any] = {
        "indicator": indicator,
        "type": type_,
        "value": value,
        "tlp": Tlp.GREEN,
        "recipients": (),
        "bucket": BUCKET,
        "confidence": 80,
        "tags": (),
        "reporter": reporter_token(b"origin-secret-00", indicator),
        "expires": BUCKET + 30 * DAY,
    }
    fields.update(overrides)
    return Report(**fields)


def sign(issuer: str, payload: bytes) -> str:
    """A stand-in signature (HMAC); the real node uses its Ed25519 identity."""
    return base64.b64encode(
        hmac.new(ISSUER_KEYS[issuer], payload, hashlib.sha256).digest()
    ).decode()


def verify(issuer: str, payload: bytes, signature: str) -> bool:
    """Checks :func:`sign`'s signatures."""
    return issuer in ISSUER_KEYS and hmac.compare_digest(sign(issuer, payload), signature)


def make_tombstone(value: str = "203.0.113.7", type_: str = "ipv4", **overrides: Any) -> Tombstone:
    """A tombstone signed by ``node-a`` (unless ``signature`` is overridden)."""
    fields: dict[str, Any] = {
        "indicator": indicator_id(type_, value),
        "verdict": Verdict.FALSE_POSITIVE,
        "tlp": Tlp.GREEN,
        "recipients": (),
        "issued": BUCKET,
        "expires": BUCKET + 7 * DAY,
        "issuer": "node-a",
        "signature": "",
    }
    fields.update(overrides)
    unsigned = Tombstone(**fields)
    if "signature" in overrides:
        return unsigned
    return Tombstone(**{**fields, "signature": sign(unsigned.issuer, unsigned.signed_payload())})
