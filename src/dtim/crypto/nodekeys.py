"""This node's identity keys across rollovers: which key each peer knows the node by.

After an identity rollover (:mod:`dtim.crypto.rotation`) a peer keeps
verifying the node with the key it pinned until it has taken the rollover
statement; from then on it answers "key revoked" to the old key. So while a
rollover is being delivered the node signs, per peer, with the key that peer
knows: a retired key for peers still waiting, the current key for the rest.
Peers keep addressing the node by the id they first pinned, so every id in
the rollover chain names this node as recipient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dtim.crypto.identity import NodeIdentity

KeyOwner = Callable[[str], str | None]
"""Maps a peer's signing key id to its peer id (they differ once the peer rolled over)."""


class NodeKeys:
    """The current identity, retired ones still needed, and the key each lagging peer knows.

    Args:
        current: the identity in ``keys/identity.key``.
        retired: retired identities by node id (``keys/retired/``).
        aliases: every node id this node had before (the rollover chain) -> its public key.
        known: peer id -> node id of the key that peer still knows (peers not
            listed know ``current``).
        owner: resolves a requester's key id to its peer id (responses name the key).
    """

    def __init__(
        self,
        current: NodeIdentity,
        *,
        retired: Mapping[str, NodeIdentity] | None = None,
        aliases: Mapping[str, str] | None = None,
        known: Mapping[str, str] | None = None,
        owner: KeyOwner | None = None,
    ) -> None:
        self._current = current
        self._retired = dict(retired or {})
        self._aliases = dict(aliases or {})
        self._known = dict(known or {})
        self.owner: KeyOwner = owner or (lambda _key_id: None)

    @property
    def current(self) -> NodeIdentity:
        """The newest identity (published in the node document)."""
        return self._current

    @property
    def node_ids(self) -> frozenset[str]:
        """Every id peers may address this node by: the current one and the chain's."""
        return frozenset(self._aliases) | {self._current.node_id}

    def public_key_of(self, node_id: str) -> str | None:
        """Base64 public key of one of our ids (current or from the chain), else None."""
        if node_id == self._current.node_id:
            return self._current.public_key_b64
        return self._aliases.get(node_id)

    @property
    def known(self) -> dict[str, str]:
        """Peer id -> the older key id that peer still knows (a copy)."""
        return dict(self._known)

    def retired(self, node_id: str) -> NodeIdentity | None:
        """A retired identity still kept, or None."""
        return self._retired.get(node_id)

    def for_peer(self, peer: str) -> NodeIdentity:
        """The identity to sign with for ``peer`` (a peer id, or a requester's key id).

        A peer still waiting for a rollover gets the retired key it knows; when
        that key is gone (deleted by hand) the current one is the only choice.
        """
        key_id = self._known.get(peer)
        if key_id is None:
            owner = self.owner(peer)
            key_id = self._known.get(owner) if owner is not None else None
        if key_id is None:
            return self._current
        return self._retired.get(key_id, self._current)

    def adopt(
        self,
        current: NodeIdentity,
        *,
        retired: Mapping[str, NodeIdentity],
        aliases: Mapping[str, str],
        known: Mapping[str, str],
    ) -> None:
        """Switch to a new current identity (a rollover happened)."""
        self._current = current
        self._retired = dict(retired)
        self._aliases = dict(aliases)
        self._known = dict(known)

    def learned(self, peer_id: str, key_id: str) -> None:
        """``peer_id`` now knows the key ``key_id`` (it took a rollover statement)."""
        if key_id == self._current.node_id:
            self._known.pop(peer_id, None)
        else:
            self._known[peer_id] = key_id

    def set_known(self, known: Mapping[str, str]) -> None:
        """Replace who still knows an older key (another process of this node delivers)."""
        self._known = dict(known)

    def forget(self, peer_id: str) -> None:
        """Stop tracking a peer (revoked or removed): it gets the current key."""
        self._known.pop(peer_id, None)

    def drop_retired(self, node_id: str) -> None:
        """Forget a retired identity (its file was deleted)."""
        self._retired.pop(node_id, None)

    def __repr__(self) -> str:
        return f"NodeKeys(current={self._current.node_id!r}, waiting={len(self._known)})"
