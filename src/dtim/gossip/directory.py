"""The running node's view of its peers, and back-off of failing peers.

The CLI and the admin API write to the store (:mod:`dtim.gossip.peers`); a
running node notices within
:data:`REFRESH_SECONDS` (its :class:`PeerDirectory` re-reads the peers table
at most that old on every signed request and in a background loop), so
approve and revoke take effect without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dtim.crypto.identity import node_id_of
from dtim.crypto.signatures import PeerKey
from dtim.errors import StoreError
from dtim.model import Peer, PeerStatus
from dtim.store import Store
from dtim.store.gossip import GossipStore

log = logging.getLogger("dtim.gossip.peers")

MIN_HEALTHY_PEERS = 4
"""Below this many approved peers dissemination slows sharply: the node warns."""
REFRESH_SECONDS = 1.0
"""A running node's view of the peers table is never older than this."""
TrustUpdate = Callable[[Mapping[str, Sequence[str]]], None]
"""Replaces the mTLS trust set (``PeerTrust.set_peers``)."""


CLEARED_STATE_KEY = "peers.cleared"
"""Store state: peer id -> when a person last re-approved it (lifts a reputation quarantine)."""


@dataclass(frozen=True, slots=True)
class PeerSnapshot:
    """The peers table at one moment: every peer, the pinned CAs, and re-approvals."""

    peers: Mapping[str, Peer]
    pins: Mapping[str, str]
    cleared: Mapping[str, str] = field(default_factory=dict)

    def approved(self) -> list[Peer]:
        """Approved peers, in a stable order."""
        return sorted(
            (p for p in self.peers.values() if p.status is PeerStatus.APPROVED), key=lambda p: p.id
        )

    def trust(self) -> dict[str, list[str]]:
        """The mTLS trust set: approved peers that have a pinned CA."""
        return {p.id: [self.pins[p.id]] for p in self.approved() if p.id in self.pins}


class PeerDirectory:
    """The running node's view of its peers: keys for signatures, CAs for mTLS, who to gossip with.

    Args:
        store: the node's store (the CLI writes the same tables).
        items: the gossip tables (pinned CAs).
        trust: replaces the server's mTLS trust set when the approved set changes.
        max_age: seconds after which a lookup re-reads the table first.
    """

    def __init__(
        self,
        store: Store,
        items: GossipStore,
        *,
        trust: TrustUpdate | None = None,
        max_age: float = REFRESH_SECONDS,
    ) -> None:
        self._store = store
        self._items = items
        self._trust = trust
        self._max_age = max_age
        self._snapshot = PeerSnapshot({}, {})
        self._loaded = -1.0
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[PeerSnapshot, PeerSnapshot], Awaitable[None]]] = []
        self._warned: int | None = None
        self._key_owners: dict[str, str] = {}
        self._keyed_snapshot: PeerSnapshot | None = None

    @property
    def snapshot(self) -> PeerSnapshot:
        """The current view (call :meth:`refresh` to bring it up to date)."""
        return self._snapshot

    def on_change(self, listener: Callable[[PeerSnapshot, PeerSnapshot], Awaitable[None]]) -> None:
        """Call ``listener(old, new)`` whenever a refresh finds the peers changed."""
        self._listeners.append(listener)

    async def refresh(self, *, force: bool = False) -> None:
        """Re-read the peers table when the view is older than ``max_age`` (or always).

        Raises:
            StoreError: the store failed (the old view stays in force).
        """
        loop = asyncio.get_running_loop()
        if not force and loop.time() - self._loaded < self._max_age:
            return
        async with self._lock:
            if not force and loop.time() - self._loaded < self._max_age:
                return
            peers = await self._store.list_peers()
            pins = await self._items.pinned_cas()
            cleared = await self._store.get_state(CLEARED_STATE_KEY)
            self._loaded = loop.time()
            new = PeerSnapshot(
                {p.id: p for p in peers},
                pins,
                {str(k): str(v) for k, v in cleared.items()} if isinstance(cleared, dict) else {},
            )
            old = self._snapshot
            if new == old:
                return
            self._snapshot = new
            if self._trust is not None and new.trust() != old.trust():
                self._trust(new.trust())
            self._warn(new)
            for listener in self._listeners:
                await listener(old, new)

    def _warn(self, snapshot: PeerSnapshot) -> None:
        count = len(snapshot.approved())
        if count < MIN_HEALTHY_PEERS and count != self._warned:
            log.warning(
                "only %d approved peer(s): with fewer than %d, indicators spread slowly and "
                "one peer can see most of what this node shares; approve more peers",
                count,
                MIN_HEALTHY_PEERS,
            )
        self._warned = count

    async def run(self, interval: float = REFRESH_SECONDS) -> None:
        """Refresh forever (a background task), logging store failures."""
        while True:
            try:
                await self.refresh(force=True)
            except StoreError as exc:
                log.warning("cannot read peers: %s", exc)
            await asyncio.sleep(interval)

    async def lookup(self, key_id: str) -> PeerKey | None:
        """The signing key ``key_id`` (a node id), with the status of the peer that holds it.

        After a key rollover the peer keeps its id while its key's id changes: the
        new key is found through the peer, and the old one (the peer id itself)
        answers as revoked.
        """
        await self.refresh()
        snapshot = self._snapshot
        if snapshot is not self._keyed_snapshot:
            self._key_owners = {
                _key_id(p.public_key): p.id for p in snapshot.peers.values() if p.public_key
            }
            self._keyed_snapshot = snapshot
        owner = self._key_owners.get(key_id)
        peer = snapshot.peers.get(owner) if owner is not None else None
        if peer is not None:
            return PeerKey(key_id, peer.public_key, peer.status, peer.id)
        retired = snapshot.peers.get(key_id)
        if retired is not None and retired.public_key:
            return PeerKey(key_id, retired.public_key, PeerStatus.REVOKED, retired.id)
        return None

    def get(self, peer_id: str) -> Peer | None:
        """A peer by id from the current view."""
        return self._snapshot.peers.get(peer_id)

    def approved(self, peer_id: str) -> Peer | None:
        """The peer when it is approved now, else None."""
        peer = self._snapshot.peers.get(peer_id)
        return peer if peer is not None and peer.status is PeerStatus.APPROVED else None

    def pin(self, peer_id: str) -> str | None:
        """The pinned CA PEM of a peer."""
        return self._snapshot.pins.get(peer_id)

    def gossipable(self) -> list[Peer]:
        """Approved peers with a pinned CA: the ones a round can talk to."""
        return [p for p in self._snapshot.approved() if p.id in self._snapshot.pins]


def _key_id(public_key_b64: str) -> str:
    try:
        return node_id_of(base64.b64decode(public_key_b64, validate=True))
    except (binascii.Error, ValueError):
        return ""  # unusable key: matches no key id


class Backoff:
    """Exponential back-off per peer after failed sessions, with jitter.

    After ``n`` consecutive failures a peer is skipped for
    ``base * 2**(n-1)`` seconds (at most ``cap``), times a random factor in
    [0.5, 1.0] so that peers that failed together do not retry together.
    """

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self._base = base
        self._cap = cap
        self._rng = rng or random.Random()  # noqa: S311  # nosec B311  # jitter, not security
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def failures(self, peer_id: str) -> int:
        """Consecutive failures of a peer."""
        return self._failures.get(peer_id, 0)

    def failed(self, peer_id: str, now: float) -> float:
        """Record a failure; returns when the peer may be tried again (monotonic seconds)."""
        count = self._failures.get(peer_id, 0) + 1
        self._failures[peer_id] = count
        delay = min(self._cap, self._base * 2 ** (count - 1)) * self._rng.uniform(0.5, 1.0)
        self._until[peer_id] = now + delay
        return self._until[peer_id]

    def succeeded(self, peer_id: str) -> None:
        """Record a success: the peer is tried normally again."""
        self._failures.pop(peer_id, None)
        self._until.pop(peer_id, None)

    def ready(self, peer_id: str, now: float) -> bool:
        """True when the peer may be tried at ``now``."""
        return self._until.get(peer_id, 0.0) <= now
