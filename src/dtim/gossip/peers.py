"""Peers: approval and revocation, the running node's cached view of them, and back-off.

Approval is manual. A peer is added ``pending`` (from a bare URL in
``network.default_peers``, ``dtim peers add URL`` or the registry) with the
key and CA certificate its ``GET /api/v1/node`` document carries; a person
compares the key's fingerprint out of band and approves it. An entry of
``default_peers`` that carries its public key is approved by that very
configuration. Approving pins the peer's CA certificate: mutual TLS trusts
exactly the approved peers' pinned CAs.

The CLI writes to the store; a running node notices within
:data:`REFRESH_SECONDS` (its :class:`PeerDirectory` re-reads the peers table
at most that old on every signed request and in a background loop), so
approve and revoke take effect without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from dtim.crypto.auditlog import AuditEvent
from dtim.crypto.certs import certificate_fingerprint
from dtim.crypto.signatures import PeerKey
from dtim.errors import CryptoError, PeerRejected, StoreError, ValidationError
from dtim.gossip.inbox import AuditSink, record
from dtim.gossip.transport import NodeInfo
from dtim.model import Clock, Peer, PeerId, PeerStatus, SystemClock
from dtim.model.clock import iso
from dtim.model.indicator import JsonValue
from dtim.store import Store
from dtim.store.gossip import GossipStore

log = logging.getLogger("dtim.gossip.peers")

MIN_HEALTHY_PEERS = 4
"""Below this many approved peers dissemination slows sharply: the node warns."""
REFRESH_SECONDS = 1.0
"""A running node's view of the peers table is never older than this."""
_ID_PREFIX = re.compile(r"^[0-9a-f]{6,64}$")

Fetch = Callable[[str], Awaitable[NodeInfo]]
"""Fetches and checks a node document from an endpoint URL."""
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
        """The signing key ``key_id`` (a peer id), with the peer's current status."""
        await self.refresh()
        peer = self._snapshot.peers.get(key_id)
        if peer is None or not peer.public_key:
            return None
        return PeerKey(peer.id, peer.public_key, peer.status)

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


# -- approval (the CLI and the admin API call these) ----------------------------------


async def resolve_peer(store: Store, ident: str) -> Peer:
    """A peer by id, or by a unique id prefix of at least 6 hex digits.

    Raises:
        ValidationError: no peer, or the prefix is ambiguous.
    """
    text = ident.strip().lower()
    found = await store.get_peer(text)
    if found is not None:
        return found
    if not _ID_PREFIX.match(text):
        raise ValidationError("peer", f"no peer with id {ident!r}")
    matches = [p for p in await store.list_peers() if p.id.startswith(text)]
    if len(matches) != 1:
        why = "no peer" if not matches else f"{len(matches)} peers"
        raise ValidationError("peer", f"{why} with an id starting {ident!r}")
    return matches[0]


async def add_peer(
    store: Store,
    items: GossipStore,
    info: NodeInfo,
    *,
    endpoint: str,
    now: datetime,
    audit: AuditSink | None = None,
    source: str = "manual",
    status: PeerStatus = PeerStatus.PENDING,
    groups: Sequence[str] = (),
) -> Peer:
    """Record a peer from its checked node document (``pending`` unless told otherwise).

    A peer already known keeps its status; its CA is pinned only when none is
    pinned yet or it is not approved (an approved peer's pin changes only on
    purpose, by revoking and approving again).

    Raises:
        ValidationError: another peer already uses that endpoint.
    """
    url = endpoint.rstrip("/")
    existing = await store.get_peer(info.id)
    if existing is None:
        for other in await store.list_peers():
            if other.endpoint.rstrip("/") == url:
                raise ValidationError(
                    "endpoint", f"{url} is already known as peer {other.id[:16]} ({other.status})"
                )
        peer = Peer(
            id=PeerId(info.id),
            endpoint=url,
            public_key=info.public_key,
            fingerprint=info.fingerprint,
            status=status,
            added_at=now,
            groups=tuple(sorted(set(groups))),
            source=source,
        )
        await store.save_peer(peer)
        record(
            audit,
            {
                "event": AuditEvent.PEER_ADDED.value,
                "peer": peer.id,
                "endpoint": url,
                "fingerprint": info.fingerprint,
                "status": status.value,
                "source": source,
            },
        )
    else:
        peer = existing
        if status is PeerStatus.APPROVED and existing.status is PeerStatus.PENDING:
            peer = await store.set_peer_status(existing.id, PeerStatus.APPROVED)
    pins = await items.pinned_cas()
    if peer.id not in pins or peer.status is not PeerStatus.APPROVED:
        await items.pin_peer_ca(peer.id, info.ca_certificate, now=now)
    return peer


async def set_status(
    store: Store,
    items: GossipStore,
    ident: str,
    status: PeerStatus,
    *,
    now: datetime,
    audit: AuditSink | None = None,
    fetch: Fetch | None = None,
    by: str = "cli",
) -> Peer:
    """Approve, reject or revoke a peer; a running node applies it within a second.

    Approving needs the peer's key and a pinned CA certificate; when the CA is
    missing it is fetched now (``fetch``) and must come from the same key.

    Raises:
        ValidationError: unknown peer.
        PeerRejected: approving a peer whose key or CA cannot be confirmed.
        PeerUnreachable: the CA had to be fetched and the peer did not answer.
    """
    peer = await resolve_peer(store, ident)
    if status is PeerStatus.APPROVED and peer.status is PeerStatus.APPROVED:
        # Approving again is how a person lifts a reputation quarantine on a running node.
        cleared = await store.get_state(CLEARED_STATE_KEY)
        marks = dict(cleared) if isinstance(cleared, dict) else {}
        marks[peer.id] = iso(now)
        await store.set_state(CLEARED_STATE_KEY, marks)
    if status is PeerStatus.APPROVED:
        pins = await items.pinned_cas()
        if not peer.public_key or peer.id not in pins:
            if fetch is None:
                raise PeerRejected(f"peer {peer.id[:16]} has no pinned CA certificate to trust")
            info = await fetch(peer.endpoint)
            if info.id != peer.id:
                raise PeerRejected(
                    f"{peer.endpoint} now answers with another key ({info.fingerprint}); "
                    "refusing to approve: compare fingerprints and add it again"
                )
            if not peer.public_key:
                await store.save_peer(
                    replace(peer, public_key=info.public_key, fingerprint=info.fingerprint)
                )
            await items.pin_peer_ca(peer.id, info.ca_certificate, now=now)
    updated = await store.set_peer_status(peer.id, status)
    event = {
        PeerStatus.APPROVED: AuditEvent.PEER_APPROVED,
        PeerStatus.REJECTED: AuditEvent.PEER_REJECTED,
        PeerStatus.REVOKED: AuditEvent.PEER_REVOKED,
        PeerStatus.PENDING: AuditEvent.PEER_ADDED,
    }[status]
    record(
        audit,
        {
            "event": event.value,
            "peer": peer.id,
            "fingerprint": peer.fingerprint,
            "endpoint": peer.endpoint,
            "by": by,
        },
    )
    return updated


@dataclass(frozen=True, slots=True)
class DefaultPeer:
    """One ``network.default_peers`` entry: a URL, with a key when it is approved by config."""

    endpoint: str
    public_key: str | None = None
    groups: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entry: object) -> DefaultPeer:
        """Read a bare URL or ``{endpoint = URL, public_key = B64, groups = [...]}``.

        Raises:
            ValidationError: neither form.
        """
        if isinstance(entry, str) and entry.strip():
            return cls(entry.strip().rstrip("/"))
        if isinstance(entry, Mapping) and isinstance(entry.get("endpoint"), str):
            key = entry.get("public_key")
            groups = entry.get("groups", ())
            if key is not None and not isinstance(key, str):
                raise ValidationError("network.default_peers", "public_key must be a string")
            if not isinstance(groups, list | tuple) or not all(isinstance(g, str) for g in groups):
                raise ValidationError("network.default_peers", "groups must be a list of names")
            return cls(str(entry["endpoint"]).strip().rstrip("/"), key or None, tuple(groups))
        raise ValidationError("network.default_peers", f"not a URL or a peer table: {entry!r}")


async def adopt_default_peer(
    store: Store,
    items: GossipStore,
    entry: DefaultPeer,
    *,
    fetch: Fetch,
    now: datetime,
    audit: AuditSink | None = None,
) -> Peer:
    """Bring one configured peer into the store: pending (bare URL) or approved (with its key).

    A person's later decision wins: a configured peer that was revoked or
    rejected stays so.

    Raises:
        PeerUnreachable: the peer did not answer (try again later).
        PeerRejected: it answers with another key than the configured one.
        ProtocolError: its node document is not valid.
    """
    info = await fetch(entry.endpoint)
    if entry.public_key is not None and info.public_key != entry.public_key:
        raise PeerRejected(
            f"{entry.endpoint} answers with key {info.fingerprint}, not the configured one"
        )
    status = PeerStatus.APPROVED if entry.public_key is not None else PeerStatus.PENDING
    return await add_peer(
        store,
        items,
        info,
        endpoint=entry.endpoint,
        now=now,
        audit=audit,
        source="config",
        status=status,
        groups=entry.groups,
    )


class Backoff:
    """Exponential back-off per peer after failed sessions, with jitter.

    After ``n`` consecutive failures a peer is skipped for
    ``base * 2**(n-1)`` seconds (at most ``cap``), times a random factor in
    [0.5, 1.0] so that peers that failed together do not retry together.
    """

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self._base = base
        self._cap = cap
        self._rng = rng or random.Random()  # noqa: S311  # jitter, not security
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


def peer_json(peer: Peer, pins: Mapping[str, str]) -> dict[str, JsonValue]:
    """A peer as ``dtim peers list --json`` and the admin API show it."""
    pem = pins.get(peer.id)
    ca_fingerprint: str | None = None
    if pem:
        try:
            ca_fingerprint = certificate_fingerprint(pem.encode("ascii"))
        except CryptoError:
            ca_fingerprint = None
    return {
        "id": peer.id,
        "endpoint": peer.endpoint,
        "fingerprint": peer.fingerprint,
        "status": peer.status.value,
        "groups": list(peer.groups),
        "score": round(peer.score, 3),
        "last_contact": iso(peer.last_contact) if peer.last_contact else None,
        "ca_fingerprint": ca_fingerprint,
        "source": peer.source,
        "added_at": iso(peer.added_at),
    }


async def peer_listing(store: Store, items: GossipStore) -> list[JsonValue]:
    """Every peer as JSON, oldest first."""
    pins = await items.pinned_cas()
    return [peer_json(peer, pins) for peer in await store.list_peers()]


class PeerControls:
    """Peer actions for the admin API (:class:`dtim.api.admin_ops.PeerControl`).

    The admin API writes its own audit records, so these write none.

    Args:
        store: the node's store.
        items: the gossip tables (pins).
        fetch: fetches a node document (approving a peer without a pinned CA).
        directory: the running node's directory, refreshed at once after each action.
    """

    def __init__(
        self,
        store: Store,
        items: GossipStore,
        *,
        fetch: Fetch,
        directory: PeerDirectory | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._items = items
        self._fetch = fetch
        self._directory = directory
        self._clock = clock or SystemClock()

    async def _set(self, peer_id: str, status: PeerStatus) -> Peer:
        peer = await set_status(
            self._store,
            self._items,
            peer_id,
            status,
            now=self._clock.now(),
            fetch=self._fetch,
            by="admin",
        )
        if self._directory is not None:
            await self._directory.refresh(force=True)
        return peer

    async def approve(self, peer_id: str) -> Peer:
        """Approve a peer (pinning its CA)."""
        return await self._set(peer_id, PeerStatus.APPROVED)

    async def reject(self, peer_id: str) -> Peer:
        """Reject a peer."""
        return await self._set(peer_id, PeerStatus.REJECTED)

    async def revoke(self, peer_id: str) -> Peer:
        """Revoke a peer: its connections are refused from the next request on."""
        return await self._set(peer_id, PeerStatus.REVOKED)
