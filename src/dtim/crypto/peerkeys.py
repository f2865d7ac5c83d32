"""Signing keys of peers, as the request verifier sees them, and where it looks them up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dtim.model.peer import PeerStatus


@dataclass(frozen=True, slots=True)
class PeerKey:
    """A signing key a peer is known by, and the standing of that peer.

    Attributes:
        key_id: the ``keyid`` (the peer's node id: hex SHA-256 of the public key).
        public_key: base64 raw Ed25519 public key.
        status: only ``approved`` keys are accepted.
        peer_id: the peer record the key belongs to (differs from ``key_id`` after a rollover).
    """

    key_id: str
    public_key: str
    status: PeerStatus
    peer_id: str = ""

    @property
    def owner(self) -> str:
        """``peer_id``, or ``key_id`` when the key is the peer's original one."""
        return self.peer_id or self.key_id


class PeerKeys(Protocol):
    """Where the verifier looks keys up (the store, or a static set in tests)."""

    async def lookup(self, key_id: str) -> PeerKey | None:
        """The key with this id, whatever its status; None when unknown."""
        ...


class StaticPeerKeys:
    """An in-memory :class:`PeerKeys`; ``set`` and ``revoke`` apply to the next lookup."""

    def __init__(self, keys: Sequence[PeerKey] = ()) -> None:
        self._keys = {k.key_id: k for k in keys}

    async def lookup(self, key_id: str) -> PeerKey | None:
        """The key, or None."""
        return self._keys.get(key_id)

    def set(self, key: PeerKey) -> None:
        """Add or replace a key."""
        self._keys = {**self._keys, key.key_id: key}

    def revoke(self, key_id: str) -> None:
        """Mark a key revoked."""
        key = self._keys[key_id]
        self.set(PeerKey(key.key_id, key.public_key, PeerStatus.REVOKED, key.peer_id))
