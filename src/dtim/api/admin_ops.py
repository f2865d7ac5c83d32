"""What an admin can do, shared by the admin JSON API and the dashboard pages.

Every state change is written to the encrypted audit log (ids, never indicator
contents) and, for indicators, to the indicator's history in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from dtim.aging import DecayModel, Verdict
from dtim.api.admin_detail import IndicatorDetail, build_detail
from dtim.crypto.auditlog import AuditEvent, AuditLog
from dtim.crypto.keyring import Keyring
from dtim.crypto.rotation import RotationKind, last_rotation, rotate
from dtim.errors import DTIMError, ValidationError
from dtim.gossip.verdicts import Issuer, VerdictRecord, record_verdict
from dtim.model import (
    Indicator,
    JsonObject,
    JsonValue,
    Peer,
    PeerId,
    PeerStatus,
    Scope,
    SystemClock,
    Tlp,
    make_indicator,
)
from dtim.model.clock import Clock, iso
from dtim.privacy import PrivacyFilter
from dtim.store import (
    IndicatorEvent,
    IndicatorPage,
    IndicatorSearch,
    IndicatorStats,
    IndicatorSummary,
    Store,
    StoreCounts,
)
from dtim.store.leader import Spawn

LOCAL_SOURCES = (
    "ufw",
    "fail2ban",
    "suricata",
    "zeek",
    "clamav",
    "nginx_access",
    "nginx_error",
    "apache_access",
    "apache_error",
    "virustotal",
    "admin",
    "manual",
)
"""Sources that mean "this node saw it itself"; anything else was received."""
ACTOR = "admin"
STATS_TTL = 30.0
"""Seconds the overview's counts and charts are fresh; older ones are served while a refresh
runs in the background (at 1M indicators on SQLite they take about 2 s to compute)."""

log = logging.getLogger("dtim.admin")

StatusProvider = Callable[[], Awaitable[Mapping[str, JsonValue]]]
"""Returns a status document (gossip health, registry state); the dashboard shows it."""


class PeerControl(Protocol):
    """The gossip layer's peer actions, when it is running (revocation takes effect at once)."""

    async def approve(self, peer_id: str) -> Peer:
        """Approve a pending peer."""
        ...

    async def reject(self, peer_id: str) -> Peer:
        """Reject a pending peer."""
        ...

    async def revoke(self, peer_id: str) -> Peer:
        """Revoke an approved peer."""
        ...


@dataclass(frozen=True)
class AdminContext:
    """Everything the admin API and dashboard need, built by ``service.py``.

    Attributes:
        settings: the effective settings with secrets masked (``describe_settings``).
        peer_control: the gossip layer's peer actions; without it the store is updated
            directly (the gossip loop reads peer status from the store).
        gossip_status, registry_status: optional status providers for the overview.
        issuer: the node identity (signs verdicts' tombstones); without it
            verdicts cannot be given here.
        spawn: starts the overview's background refreshes (``service.spawn``); without it
            expired counts and charts are recomputed while the request waits.
    """

    store: Store
    keys_dir: Path
    certs_dir: Path
    keyring: Keyring
    audit: AuditLog
    node_id: str
    fingerprint: str
    settings: Mapping[str, Mapping[str, Any]]
    privacy: PrivacyFilter
    decay: DecayModel = field(default_factory=DecayModel)
    clock: Clock = field(default_factory=SystemClock)
    started: datetime | None = None
    key_rotation_days: int = 7
    registry_url: str = ""
    peer_control: PeerControl | None = None
    gossip_status: StatusProvider | None = None
    registry_status: StatusProvider | None = None
    local_sources: tuple[str, ...] = LOCAL_SOURCES
    issuer: Issuer | None = None
    spawn: Spawn | None = None


@dataclass(frozen=True, slots=True)
class Overview:
    """The overview page's data."""

    node_id: str
    fingerprint: str
    uptime_seconds: float
    counts: StoreCounts
    stats: IndicatorStats
    peers: dict[str, int]
    gossip: Mapping[str, JsonValue]
    shared_last_7_days: int


@dataclass(frozen=True, slots=True)
class KeyAge:
    """Age of one rotatable key."""

    kind: str
    last_rotated: datetime | None
    age_days: float | None
    due: bool


class NotFoundError(DTIMError):
    """No indicator or peer with that id."""


def _peer_id_for(endpoint: str) -> str:
    # A peer added by URL is known by its endpoint until the gossip layer fetches its key.
    return "url-" + hashlib.sha256(endpoint.encode()).hexdigest()[:24]


class AdminOps:
    """Admin operations over an :class:`AdminContext` (one per admin app)."""

    def __init__(self, context: AdminContext) -> None:
        self.ctx = context
        self._started = context.started or context.clock.now()
        self._cache: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # one per key: the keys compute side by side
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._generation = 0

    def audit(self, event: str, **fields: JsonValue) -> None:
        """Append an admin action to the encrypted audit log."""
        self.ctx.audit.append({"event": event, "actor": ACTOR, **fields})

    async def _cached(self, key: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """``make()``'s value, computed once and then kept fresh in the background.

        Only the first request (and the first after :meth:`invalidate`) waits for the
        computation; an expired value is served as it is while one refresh runs (with
        ``ctx.spawn``; without it the request that finds it expired recomputes it).
        """
        spawn = self.ctx.spawn
        hit = self._cache.get(key)
        expired = hit is not None and time.monotonic() - hit[0] >= STATS_TTL
        if hit is None or (expired and spawn is None):
            async with self._locks.setdefault(key, asyncio.Lock()):
                latest = self._cache.get(key)
                if latest is None or latest is hit:
                    latest = (time.monotonic(), await make())
                    self._cache[key] = latest
                return latest[1]
        if expired and spawn is not None and key not in self._refreshing:
            self._refreshing[key] = spawn(self._refresh(key, make), f"overview-{key}")
        return hit[1]

    async def _refresh(self, key: str, make: Callable[[], Awaitable[Any]]) -> None:
        generation = self._generation
        try:
            value = await make()
            if generation == self._generation:  # no edit since: the value is still current
                self._cache[key] = (time.monotonic(), value)
        except DTIMError as exc:  # the stale value stays; the next request tries again
            log.warning("refreshing the overview's %s failed: %s", key, exc)
        finally:
            del self._refreshing[key]

    def invalidate(self) -> None:
        """Drop cached statistics (after an edit)."""
        self._cache.clear()
        self._generation += 1

    # -- overview ---------------------------------------------------------

    async def overview(self) -> Overview:
        """Node identity, uptime, counts, chart data, peers and gossip health."""
        now = self.ctx.clock.now()
        # Each is a scan of the whole table when not cached (about a second each at a
        # million indicators); the store's threads run them side by side.
        counts: StoreCounts
        stats: IndicatorStats
        shared: int
        counts, stats, shared = await asyncio.gather(
            self._cached("counts", self.ctx.store.counts),
            self._cached(
                "stats",
                lambda: self.ctx.store.indicator_stats(
                    since=now - timedelta(days=7), local_sources=self.ctx.local_sources
                ),
            ),
            self._cached("shared", lambda: self._shared_since(now - timedelta(days=7))),
        )
        peers = {status.value: 0 for status in PeerStatus}
        for peer in await self.ctx.store.list_peers():
            peers[peer.status.value] += 1
        gossip: Mapping[str, JsonValue] = {"status": "not running in this process"}
        if self.ctx.gossip_status is not None:
            gossip = await self.ctx.gossip_status()
        return Overview(
            node_id=self.ctx.node_id,
            fingerprint=self.ctx.fingerprint,
            uptime_seconds=(now - self._started).total_seconds(),
            counts=counts,
            stats=stats,
            peers=peers,
            gossip=gossip,
            shared_last_7_days=shared,
        )

    async def _shared_since(self, since: datetime) -> int:
        total = 0
        for day in [d for d in self.ctx.audit.days() if d >= since.date()]:
            for record in await asyncio.to_thread(self.ctx.audit.read, day):
                if record.get("event") != AuditEvent.INDICATORS_SHARED.value:
                    continue
                count = record.get("count")
                ids = record.get("indicators") or record.get("ids")
                if isinstance(count, int):
                    total += count
                elif isinstance(ids, list):
                    total += len(ids)
        return total

    # -- indicators ---------------------------------------------------------

    async def search(self, search: IndicatorSearch) -> IndicatorPage[Indicator]:
        """One page of indicators."""
        return await self.ctx.store.search_indicators(search)

    async def search_summaries(self, search: IndicatorSearch) -> IndicatorPage[IndicatorSummary]:
        """One page of the dashboard's indicator table."""
        return await self.ctx.store.search_indicator_summaries(search)

    async def detail(self, indicator_id: str) -> IndicatorDetail:
        """Everything about one indicator, evidence decrypted.

        Raises:
            NotFoundError: no such indicator.
        """
        indicator = await self.ctx.store.get_indicator(indicator_id)
        if indicator is None:
            raise NotFoundError(f"no indicator with id {indicator_id!r}")
        return await build_detail(
            indicator,
            store=self.ctx.store,
            keyring=self.ctx.keyring,
            privacy=self.ctx.privacy,
            decay=self.ctx.decay,
            now=self.ctx.clock.now(),
        )

    async def add_indicator(
        self,
        value: str,
        type_: str | None = None,
        *,
        confidence: int = 50,
        tlp: str = "green",
        scope: str = "private",
        recipients: Sequence[str] = (),
        tags: Sequence[str] = (),
    ) -> Indicator:
        """Add (or merge into) an indicator as the admin saw it.

        Raises:
            ValidationError: naming the bad field.
        """
        indicator = make_indicator(
            value,
            type_ or None,
            now=self.ctx.clock.now(),
            confidence=confidence,
            tlp=tlp,
            scope=scope,
            recipients=recipients,
            tags=tags,
            sources=["admin"],
        )
        await self.ctx.store.upsert_indicators([indicator])
        await self._history(
            indicator.id, "added", {"tlp": indicator.tlp.value, "scope": indicator.scope.value}
        )
        self.audit("indicator_added", indicator=indicator.id, type=indicator.type)
        self.invalidate()
        stored = await self.ctx.store.get_indicator(indicator.id)
        return stored or indicator

    async def edit_indicator(
        self,
        indicator_id: str,
        *,
        tlp: str | None = None,
        scope: str | None = None,
        recipients: Sequence[str] | None = None,
    ) -> Indicator:
        """Change an indicator's TLP, scope or recipients (an analyst decision, not a merge).

        Raises:
            NotFoundError: no such indicator.
            ValidationError: a bad TLP, scope or recipient list.
        """
        current = await self.ctx.store.get_indicator(indicator_id)
        if current is None:
            raise NotFoundError(f"no indicator with id {indicator_id!r}")
        changes: dict[str, Any] = {}
        if tlp is not None:
            changes["tlp"] = Tlp.parse(tlp)
        if scope is not None:
            changes["scope"] = Scope.parse(scope)
        if recipients is not None:
            changes["recipients"] = tuple(sorted({r.strip() for r in recipients if r.strip()}))
        updated = replace(current, modified=self.ctx.clock.now(), **changes)
        await self.ctx.store.replace_indicator(updated)
        detail: JsonObject = {
            "tlp": updated.tlp.value,
            "scope": updated.scope.value,
            "recipients": list(updated.recipients),
        }
        await self._history(indicator_id, "edited", detail)
        self.audit("indicator_edited", indicator=indicator_id, **detail)
        self.invalidate()
        return updated

    async def delete_indicator(self, indicator_id: str) -> None:
        """Delete an indicator and its local sightings.

        Raises:
            NotFoundError: no such indicator.
        """
        if not await self.ctx.store.delete_indicator(indicator_id):
            raise NotFoundError(f"no indicator with id {indicator_id!r}")
        await self._history(indicator_id, "deleted", {})
        self.audit("indicator_deleted", indicator=indicator_id)
        self.invalidate()

    async def set_verdict(
        self, indicator_id: str, verdict: str, *, reason: str = "", confidence: int = 100
    ) -> VerdictRecord:
        """Record an analyst's verdict; ``false-positive`` and ``revoked`` go to the mesh.

        Raises:
            NotFoundError: no such indicator.
            ValidationError: unknown verdict, bad reason or confidence, or no signing key.
        """
        chosen = Verdict.parse(verdict)
        if self.ctx.issuer is None:
            raise ValidationError("verdict", "this admin listener has no node key to sign with")
        if await self.ctx.store.get_indicator(indicator_id) is None:
            raise NotFoundError(f"no indicator with id {indicator_id!r}")
        done = await record_verdict(
            self.ctx.store,
            indicator_id,
            chosen,
            issuer=self.ctx.issuer,
            model=self.ctx.decay,
            now=self.ctx.clock.now(),
            reason=reason,
            confidence=confidence,
            actor=ACTOR,
        )
        self.audit("indicator_verdict", **done.audit_fields())
        self.invalidate()
        return done

    async def _history(self, indicator_id: str, action: str, detail: JsonObject) -> None:
        event = IndicatorEvent(indicator_id, self.ctx.clock.now(), action, ACTOR, detail)
        await self.ctx.store.add_indicator_event(event)

    # -- peers ------------------------------------------------------------------

    async def peers(self) -> dict[str, list[Peer]]:
        """Known peers by status."""
        grouped: dict[str, list[Peer]] = {status.value: [] for status in PeerStatus}
        for peer in await self.ctx.store.list_peers():
            grouped[peer.status.value].append(peer)
        return grouped

    async def peer(self, peer_id: str) -> Peer:
        """One peer by id.

        Raises:
            NotFoundError: no such peer.
        """
        peer = await self.ctx.store.get_peer(peer_id)
        if peer is None:
            raise NotFoundError(f"no peer with id {peer_id!r}")
        return peer

    async def approve_peer(self, peer_id: str, confirm_fingerprint: str) -> Peer:
        """Approve a pending peer after the admin confirmed its key fingerprint.

        Raises:
            NotFoundError: no such peer.
            ValidationError: the peer's key is unknown or the fingerprint does not match.
        """
        peer = await self.peer(peer_id)
        if not peer.fingerprint or not peer.public_key:
            raise ValidationError("fingerprint", "the peer's key is not known yet; cannot approve")
        typed = "".join(confirm_fingerprint.split()).removeprefix("SHA256:")
        if not typed or typed != "".join(peer.fingerprint.split()).removeprefix("SHA256:"):
            raise ValidationError("fingerprint", "does not match the peer's key fingerprint")
        return await self._set_status(peer, PeerStatus.APPROVED, AuditEvent.PEER_APPROVED)

    async def reject_peer(self, peer_id: str) -> Peer:
        """Reject a peer (it stays known, never gossiped with)."""
        return await self._set_status(
            await self.peer(peer_id), PeerStatus.REJECTED, AuditEvent.PEER_REJECTED
        )

    async def revoke_peer(self, peer_id: str) -> Peer:
        """Revoke a peer: its requests are refused from now on."""
        return await self._set_status(
            await self.peer(peer_id), PeerStatus.REVOKED, AuditEvent.PEER_REVOKED
        )

    async def _set_status(self, peer: Peer, status: PeerStatus, event: AuditEvent) -> Peer:
        control = self.ctx.peer_control
        if control is None:
            updated = await self.ctx.store.set_peer_status(peer.id, status)
        elif status is PeerStatus.APPROVED:
            updated = await control.approve(peer.id)
        elif status is PeerStatus.REJECTED:
            updated = await control.reject(peer.id)
        else:
            updated = await control.revoke(peer.id)
        self.audit(event.value, peer=peer.id, fingerprint=peer.fingerprint)
        return updated

    async def add_peer(self, endpoint: str, groups: Sequence[str] = ()) -> Peer:
        """Add a pending peer by URL (its key is fetched by the gossip layer before approval).

        Raises:
            ValidationError: not an https URL.
        """
        url = endpoint.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValidationError("endpoint", f"expected an https:// URL, got {endpoint!r}")
        for known in await self.ctx.store.list_peers():
            if known.endpoint == url:
                raise ValidationError("endpoint", f"{url} is already known as peer {known.id}")
        peer = Peer(
            id=PeerId(_peer_id_for(url)),
            endpoint=url,
            public_key="",
            fingerprint="",
            status=PeerStatus.PENDING,
            added_at=self.ctx.clock.now(),
            groups=_clean_groups(groups),
            source="manual",
        )
        await self.ctx.store.save_peer(peer)
        self.audit(AuditEvent.PEER_ADDED.value, peer=peer.id, endpoint=url)
        return peer

    async def set_peer_groups(self, peer_id: str, groups: Sequence[str]) -> Peer:
        """Replace a peer's groups."""
        peer = replace(await self.peer(peer_id), groups=_clean_groups(groups))
        await self.ctx.store.save_peer(peer)
        self.audit("peer_groups_changed", peer=peer.id, groups=list(peer.groups))
        return peer

    async def registry(self) -> Mapping[str, JsonValue]:
        """Registry status (or why there is none)."""
        if self.ctx.registry_status is not None:
            return await self.ctx.registry_status()
        if not self.ctx.registry_url:
            return {"status": "no registry configured (network.registry_url)"}
        return {"status": "configured", "url": self.ctx.registry_url}

    # -- audit log, settings, keys ---------------------------------------------------

    async def audit_days(self) -> list[date]:
        """Days that have an audit file."""
        return await asyncio.to_thread(self.ctx.audit.days)

    async def audit_records(self, day: date, text: str = "", event: str = "") -> list[JsonObject]:
        """One day's decrypted audit records, newest first, optionally filtered."""
        records = await asyncio.to_thread(self.ctx.audit.read, day)
        needle = text.strip().lower()
        chosen = [
            r
            for r in records
            if (not event or r.get("event") == event) and (not needle or needle in _flat(r).lower())
        ]
        return list(reversed(chosen))

    def settings(self) -> Mapping[str, Mapping[str, Any]]:
        """The effective configuration, secrets masked."""
        return self.ctx.settings

    async def key_ages(self) -> list[KeyAge]:
        """When each key kind was last rotated and whether it is due."""
        now = self.ctx.clock.now()
        ages = []
        for kind in RotationKind:
            last = await asyncio.to_thread(
                last_rotation, kind, keys_dir=self.ctx.keys_dir, certs_dir=self.ctx.certs_dir
            )
            age = None if last is None else (now - last).total_seconds() / 86400
            due = age is not None and 0 < self.ctx.key_rotation_days <= age
            ages.append(KeyAge(kind.value, last, age, due))
        return ages

    async def rotate_key(self, kind: str) -> Mapping[str, JsonValue]:
        """Rotate one key kind now (identity, tls or logs).

        Raises:
            ValidationError: unknown kind.
            CryptoError: the rotation failed.
        """
        try:
            chosen = RotationKind(kind)
        except ValueError:
            raise ValidationError(
                "kind", f"unknown key kind {kind!r} (identity, tls, logs)"
            ) from None
        done = await asyncio.to_thread(
            rotate,
            [chosen],
            keys_dir=self.ctx.keys_dir,
            certs_dir=self.ctx.certs_dir,
            now=self.ctx.clock.now(),
        )
        if chosen is RotationKind.LOGS:
            # The running keyring must seal with the new key from now on.
            await asyncio.to_thread(self.ctx.keyring.reload)
        self.audit(AuditEvent.KEY_ROTATED.value, kind=chosen.value, at=iso(self.ctx.clock.now()))
        return done


def _flat(record: Mapping[str, JsonValue]) -> str:
    return " ".join(f"{key}={value}" for key, value in record.items())


def _clean_groups(groups: Sequence[str]) -> tuple[str, ...]:
    cleaned = sorted({g.strip() for g in groups if g.strip()})
    for group in cleaned:
        if len(group) > 64 or any(c.isspace() for c in group):
            raise ValidationError(
                "groups", f"group names are single words up to 64 characters: {group!r}"
            )
    return tuple(cleaned)
