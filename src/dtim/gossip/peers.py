"""Peers and manual approval: add, approve, reject, revoke, default peers, listings.

Approval is manual. A peer is added ``pending`` (from a bare URL in
``network.default_peers``, ``dtim peers add URL`` or the registry) with the
key and CA certificate its ``GET /api/v1/node`` document carries; a person
compares the key's fingerprint out of band and approves it. An entry of
``default_peers`` that carries its public key is approved by that very
configuration. Approving pins the peer's CA certificate: mutual TLS trusts
exactly the approved peers' pinned CAs.

The CLI (through ``service``) and the admin API call these; they write to the
store and the audit log, and a running node's
:class:`~dtim.gossip.directory.PeerDirectory` applies the change within a
second, without a restart.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from dtim.crypto.auditlog import AuditEvent
from dtim.crypto.certs import certificate_fingerprint
from dtim.errors import CryptoError, PeerRejected, ValidationError
from dtim.gossip.directory import (
    CLEARED_STATE_KEY,
    MIN_HEALTHY_PEERS,
    REFRESH_SECONDS,
    Backoff,
    PeerDirectory,
    PeerSnapshot,
)
from dtim.gossip.inbox import AuditSink, record
from dtim.gossip.nodeinfo import NodeInfo
from dtim.model import Clock, Peer, PeerId, PeerStatus, SystemClock
from dtim.model.clock import iso
from dtim.model.indicator import JsonValue
from dtim.store import Store
from dtim.store.gossip import GossipStore

_ID_PREFIX = re.compile(r"^[0-9a-f]{6,64}$")

Fetch = Callable[[str], Awaitable[NodeInfo]]
"""Fetches and checks a node document from an endpoint URL."""


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


__all__ = [
    "CLEARED_STATE_KEY",
    "MIN_HEALTHY_PEERS",
    "REFRESH_SECONDS",
    "Backoff",
    "DefaultPeer",
    "Fetch",
    "PeerControls",
    "PeerDirectory",
    "PeerSnapshot",
    "add_peer",
    "adopt_default_peer",
    "peer_json",
    "peer_listing",
    "resolve_peer",
    "set_status",
]
