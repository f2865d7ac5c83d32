"""Factories for gossip tests: reports, and tombstones signed by fixed Ed25519 identities."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dtim.aging import Verdict
from dtim.crypto.identity import NodeIdentity
from dtim.gossip.corroboration import reporter_token
from dtim.gossip.report import Report, Tombstone, verify_tombstone
from dtim.model import indicator_id
from dtim.model.tlp import Tlp

BUCKET = 1_772_366_400  # 2026-03-01T12:00:00Z
DAY = 86400
NODE_A = NodeIdentity(Ed25519PrivateKey.from_private_bytes(b"a" * 32))
NODE_B = NodeIdentity(Ed25519PrivateKey.from_private_bytes(b"b" * 32))
verify = verify_tombstone
"""The node's check: the tombstone's own key names its issuer and signed it."""


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


def make_tombstone(
    value: str = "203.0.113.7",
    type_: str = "ipv4",
    *,
    signer: NodeIdentity = NODE_A,
    **overrides: Any,
) -> Tombstone:
    """A tombstone signed by ``signer`` (unless ``signature`` is overridden); the issuer and
    its key are the signer's unless overridden (then the signature covers the overrides)."""
    fields: dict[str, Any] = {
        "indicator": indicator_id(type_, value),
        "verdict": Verdict.FALSE_POSITIVE,
        "tlp": Tlp.GREEN,
        "recipients": (),
        "issued": BUCKET,
        "expires": BUCKET + 7 * DAY,
        "issuer": signer.node_id,
        "issuer_key": signer.public_key_b64,
        "signature": "",
    }
    fields.update(overrides)
    unsigned = Tombstone(**fields)
    if "signature" in overrides:
        return unsigned
    signature = base64.b64encode(signer.sign(unsigned.signed_payload())).decode("ascii")
    return Tombstone(**{**fields, "signature": signature})
