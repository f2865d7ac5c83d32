"""The node side of the registry: register and refresh (opt-in), read the list, add pending peers.

Each round, with ``registry_opt_in``: register (a fresh signed statement, which
is the heartbeat); then, opted in or not, read the peer list — the whole list
on the first round, then only what changed (``since``) — and verify every entry
against its own node's signature. Each node seen for the first time becomes a
``pending`` peer with ``source="registry"``: never approved automatically, and
peers already known (approved, rejected, revoked) are never touched. A node
that turns ``registry_opt_in`` off withdraws its entry on the next round.

The loop is independent of gossip: a registry that is down, slow or lying costs
a logged warning and a retry, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from dtim.crypto.identity import NodeIdentity
from dtim.crypto.nodekeys import NodeKeys
from dtim.errors import DTIMError, RegistryError, ValidationError
from dtim.model.clock import Clock, SystemClock
from dtim.model.ids import PeerId
from dtim.model.peer import Peer, PeerStatus
from dtim.registry.client import RegistryClient, RegistryDescription, RejectedEntry
from dtim.registry.statements import Profile, SignedStatement
from dtim.store import Store

log = logging.getLogger(__name__)

SOURCE = "registry"
DEFAULT_INTERVAL = 300.0
RETRY_INTERVAL = 60.0
"""After a failed round, try again at least this soon."""


@dataclass(frozen=True)
class DiscoveryOptions:
    """What the node does with a registry.

    Attributes:
        registry_url: the registry (``network.registry_url``).
        opt_in: publish our entry (``network.registry_opt_in``); reading needs no opt-in.
        endpoint: our public https:// URL (``network.public_endpoint``); needed to opt in.
        interval_seconds: time between rounds (default: the registry's heartbeat).
        profile: metadata to publish (nothing by default).
        page_size: entries per request (default: the registry's).
    """

    registry_url: str
    opt_in: bool = False
    endpoint: str = ""
    interval_seconds: float | None = None
    profile: Profile = field(default_factory=Profile)
    page_size: int | None = None


@dataclass(frozen=True, slots=True)
class DiscoveryRound:
    """What one round did."""

    registered: bool = False
    withdrawn: bool = False
    seen: int = 0
    added: tuple[str, ...] = ()
    """Node ids that became pending peers."""
    updated: tuple[str, ...] = ()
    """Pending registry peers whose (signed) endpoint changed."""
    rejected: tuple[RejectedEntry, ...] = ()
    error: str | None = None
    """Why registration or listing failed this round (the next round retries)."""


class RegistryDiscovery:
    """Registers this node (when opted in) and turns listed nodes into pending peers.

    Args:
        client: the registry client (its owner closes it).
        store: the node's store, where peers are saved.
        identity: this node's key, or its keys across rollovers (the running node's: after a
            rollover the next round withdraws the entry of the retired key and registers
            the new one, and none of the node's own ids is ever taken for a peer).
        options: registry URL, opt-in, endpoint, interval.
        clock: time source.
    """

    def __init__(
        self,
        client: RegistryClient,
        store: Store,
        identity: NodeIdentity | NodeKeys,
        options: DiscoveryOptions,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if options.opt_in and not options.endpoint:
            raise ValidationError("network.public_endpoint", "needed to register at the registry")
        self.client = client
        self.store = store
        self.keys = identity if isinstance(identity, NodeKeys) else NodeKeys(identity)
        self.options = options
        self._clock = clock or SystemClock()
        self._state_key = f"registry:{options.registry_url.rstrip('/')}"
        self._since = 0
        self._instance: str | None = None
        self._heartbeat: float | None = None
        self._restored = False
        self._sleep = sleep
        self._jitter = random.Random()  # noqa: S311  # nosec B311  # spreading rounds in time, not security

    @property
    def identity(self) -> NodeIdentity:
        """The node's current identity."""
        return self.keys.current

    @property
    def interval(self) -> float:
        """Seconds until the next round."""
        return self.options.interval_seconds or self._heartbeat or DEFAULT_INTERVAL

    async def run_once(self) -> DiscoveryRound:
        """One round: (re-)register or withdraw, then read and apply the list.

        Raises:
            StoreError: the node's store failed (registry problems are reported, not raised).
        """
        try:
            info = await self.client.describe()
        except RegistryError as exc:
            return DiscoveryRound(error=str(exc))
        self._heartbeat = info.heartbeat_seconds
        if info.instance != self._instance:
            self._since, self._instance = 0, info.instance
        registered, withdrawn, error = await self._publish(info)
        try:
            page = await self.client.all_peers(since=self._since, limit=self.options.page_size)
        except RegistryError as exc:
            return DiscoveryRound(registered, withdrawn, error=str(exc))
        added, updated, skipped = await self._apply(page.entries)
        self._since = page.next_since
        for item in page.rejected:
            log.warning("registry entry rejected (%s): %s", item.node_id or "?", item.reason)
        return DiscoveryRound(
            registered, withdrawn, len(page.entries), added, updated, page.rejected + skipped, error
        )

    async def _publish(self, info: RegistryDescription) -> tuple[bool, bool, str | None]:
        state = await self.store.get_state(self._state_key)
        saved = state if isinstance(state, dict) else {}
        issued = saved.get("issued_at")
        registered_as = saved.get("node_id", self.identity.node_id)
        if not self._restored and isinstance(issued, int) and isinstance(registered_as, str):
            self.client.remember_issued(registered_as, issued)
        self._restored = True
        try:
            rolled_over = registered_as != self.identity.node_id
            if (
                saved.get("registered") is True
                and rolled_over
                and await self._withdraw_retired(str(registered_as), info)
            ):
                saved = {"issued_at": self.client.now(), "registered": False}
                await self.store.set_state(self._state_key, saved)
            if self.options.opt_in:
                done = await self.client.register(
                    self.identity,
                    self.options.endpoint,
                    profile=self.options.profile,
                    description=info,
                )
                await self.store.set_state(
                    self._state_key,
                    {
                        "issued_at": done.issued_at,
                        "registered": True,
                        "node_id": self.identity.node_id,
                    },
                )
                return True, False, None
            if saved.get("registered") is True:
                await self.client.withdraw(self.identity, self.options.endpoint, description=info)
                await self.store.set_state(
                    self._state_key, {"issued_at": self.client.now(), "registered": False}
                )
                return False, True, None
        except (RegistryError, ValidationError) as exc:
            log.warning("registry %s: %s", self.client.url, exc)
            return False, False, str(exc)
        return False, False, None

    async def _withdraw_retired(self, node_id: str, info: RegistryDescription) -> bool:
        """Withdraw the entry a retired identity holds (it would hold the endpoint until it
        expired); when that key is gone, the entry expires by itself. True when withdrawn."""
        retired = self.keys.retired(node_id)
        if retired is None:
            log.info("registry: the entry of retired key %s expires by itself", node_id[:16])
            return False
        try:
            await self.client.withdraw(retired, self.options.endpoint, description=info)
        except RegistryError as exc:
            log.warning("registry: could not withdraw the retired key's entry: %s", exc)
            return False
        log.info("registry: withdrew the entry of retired key %s", node_id[:16])
        return True

    async def _apply(
        self, entries: tuple[SignedStatement, ...]
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[RejectedEntry, ...]]:
        known = {peer.id: peer for peer in await self.store.list_peers()}
        endpoints = {peer.endpoint: peer.id for peer in known.values()}
        added: list[str] = []
        updated: list[str] = []
        skipped: list[RejectedEntry] = []
        now = self._clock.now()
        for signed in entries:
            statement = signed.statement
            node_id = signed.node_id
            if node_id in self.keys.node_ids:
                continue  # this node, under its current id or one from before a rollover
            holder = endpoints.get(statement.endpoint)
            if holder is not None and holder != node_id:
                skipped.append(
                    RejectedEntry(
                        node_id, statement.endpoint, f"endpoint already known as peer {holder[:16]}"
                    )
                )
                continue
            current = known.get(PeerId(node_id))
            if current is None:
                peer = Peer(
                    id=PeerId(node_id),
                    endpoint=statement.endpoint,
                    public_key=statement.public_key,
                    fingerprint=statement.fingerprint,
                    status=PeerStatus.PENDING,
                    added_at=now,
                    source=SOURCE,
                )
                await self.store.save_peer(peer)
                added.append(node_id)
            elif (
                current.source == SOURCE
                and current.status is PeerStatus.PENDING
                and current.endpoint != statement.endpoint
            ):
                # Still awaiting a person's decision: show the endpoint the node now signs.
                await self.store.save_peer(replace(current, endpoint=statement.endpoint))
                endpoints.pop(current.endpoint, None)
                updated.append(node_id)
            else:
                continue
            endpoints[statement.endpoint] = PeerId(node_id)
        return tuple(added), tuple(updated), tuple(skipped)

    async def run(self) -> None:
        """Run rounds forever; a failing round is logged and retried, never fatal."""
        while True:
            try:
                report = await self.run_once()
            except DTIMError as exc:
                log.warning("registry round failed: %s", exc)
                delay = min(self.interval, RETRY_INTERVAL)
            else:
                # Read after the round: the first one learns the registry's heartbeat.
                delay = self.interval
                if report.added:
                    log.info("registry: %d new pending peers", len(report.added))
                if report.error is not None:
                    log.warning("registry round incomplete: %s", report.error)
                    delay = min(delay, RETRY_INTERVAL)
            await self._sleep(delay * self._jitter.uniform(0.9, 1.1))


async def registry_loop(
    options: DiscoveryOptions,
    *,
    identity: NodeIdentity | NodeKeys,
    store: Store,
    client: RegistryClient,
    clock: Clock | None = None,
) -> None:
    """The node's registry task (``service.spawn(registry_loop(...), name="registry")``).

    Runs until cancelled, then closes ``client``.
    """
    try:
        await RegistryDiscovery(client, store, identity, options, clock=clock).run()
    finally:
        await client.close()
