"""Peers: other DTIM nodes this node knows about, and whether a person approved them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dtim.errors import ValidationError
from dtim.model.ids import PeerId


class PeerStatus(StrEnum):
    """Lifecycle of a peer: only ``approved`` peers are gossiped with."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"

    @classmethod
    def parse(cls, raw: str) -> PeerStatus:
        """Read a status name.

        Raises:
            ValidationError: unknown status.
        """
        try:
            return cls(raw.strip().lower())
        except ValueError:
            raise ValidationError("status", f"unknown peer status {raw!r}") from None


@dataclass(frozen=True, slots=True)
class Peer:
    """A known node: endpoint, identity key, approval state and standing."""

    id: PeerId
    endpoint: str
    public_key: str
    """Base64 of the raw 32-byte Ed25519 public key ("" while not yet fetched)."""
    fingerprint: str
    status: PeerStatus
    added_at: datetime
    groups: tuple[str, ...] = ()
    score: float = 0.0
    last_contact: datetime | None = None
    source: str = "manual"
    """Where the peer came from: ``config``, ``manual``, ``registry``."""
