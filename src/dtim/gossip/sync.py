"""Anti-entropy: gossip rounds against the store, origin hiding, and the aging sweeper.

Every ``interval`` seconds (± ``jitter``) a round:

1. starts a new quota round (each peer may bring ``max_new_reports`` new reports);
2. picks up the node's own indicators changed since the last round; a new
   CLEAR/GREEN report first walks the Dandelion++ stem and stays out of the
   node's own views until the stem ends (see :mod:`dtim.gossip.dandelion`);
3. picks ``peers_per_round`` approved peers — the first uniformly at random
   among all that may be contacted, so a node cannot be surrounded — skipping
   peers in back-off, quarantined by reputation, or still in a session;
4. starts one push-pull reconciliation session per chosen peer
   (:func:`dtim.gossip.client.run_session`) as a background task with a
   timeout and bounded concurrency, so a slow or dead peer never stalls the
   round; a failed peer backs off exponentially.

The audit log records, per session, which indicator ids went to which peer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dtim.errors import GossipError, StoreError, ValidationError
from dtim.gossip.client import SessionOutcome, run_session
from dtim.gossip.dandelion import Router
from dtim.gossip.directory import MIN_HEALTHY_PEERS, Backoff, PeerDirectory
from dtim.gossip.inbox import AuditSink, Inbox, Receipt, record
from dtim.gossip.outbox import is_local
from dtim.gossip.reconcile import Params
from dtim.gossip.report import Item
from dtim.gossip.reputation import Reputation
from dtim.gossip.stem import Stem, shared_ids
from dtim.gossip.traffic import TrafficMeter
from dtim.gossip.transport import GossipTransport
from dtim.gossip.verdicts import adopt_verdicts
from dtim.gossip.views import ItemIndex
from dtim.metrics import METRICS
from dtim.model import Clock, IndicatorId, Peer, PeerId
from dtim.model.indicator import JsonValue
from dtim.store import Store
from dtim.store.gossip import GossipStore

log = logging.getLogger("dtim.gossip")
METRICS.declare(
    "dtim_gossip_sessions_total", "counter", "Gossip sessions started, by peer and result."
)
METRICS.declare(
    "dtim_gossip_session_seconds_total",
    "counter",
    "Seconds spent in gossip sessions, by peer (divide by sessions for the mean latency).",
)
METRICS.declare("dtim_gossip_reconcile_bytes_total", "counter", "Reconciliation bytes, by peer.")
METRICS.declare("dtim_gossip_items_total", "counter", "Gossip items sent and received, by peer.")

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]
"""Starts a named background task (``service.spawn``)."""


@dataclass(frozen=True, slots=True)
class RoundSettings:
    """Timing and fan-out of gossip rounds.

    Attributes:
        interval: seconds between rounds (``network.gossip_interval_seconds``).
        peers_per_round: sessions started per round (``network.peers_per_round``).
        request_timeout: seconds for each call to a peer.
        jitter: each wait is ``interval * (1 ± jitter)``.
        session_timeout: seconds one whole session may take.
        max_sessions: sessions running at once.
        backoff_cap: longest back-off of a failing peer, seconds.
    """

    interval: float
    peers_per_round: int
    request_timeout: float
    jitter: float = 0.2
    session_timeout: float | None = None
    max_sessions: int | None = None
    backoff_cap: float = 600.0

    @property
    def session_seconds(self) -> float:
        """The session timeout (default: four request timeouts)."""
        return self.session_timeout or 4 * self.request_timeout

    @property
    def concurrency(self) -> int:
        """Sessions running at once (default: twice the fan-out)."""
        return self.max_sessions or 2 * self.peers_per_round


class GossipLoop:
    """The rounds of one node, and the entry point for everything peers deliver.

    Args:
        index: the node's items and views.
        inbox: accepts what peers deliver.
        directory: the node's peers.
        transport: calls to peers.
        store: the indicators store (own indicators are read from it).
        items: the gossip tables.
        settings: round timing and fan-out.
        clock: time.
        spawn: starts named background tasks.
        audit: the audit log.
        reputation: peer scores (quarantined peers are skipped).
        router: Dandelion++ stem routing (None: own reports go straight into the views).
        rng: randomness for peer choice and jitter.
        params: reconciliation tuning.
        traffic: the bytes of the calls the transport made, per peer (for the dashboard).
    """

    def __init__(
        self,
        *,
        index: ItemIndex,
        inbox: Inbox,
        directory: PeerDirectory,
        transport: GossipTransport,
        store: Store,
        items: GossipStore,
        settings: RoundSettings,
        clock: Clock,
        spawn: Spawn,
        audit: AuditSink | None = None,
        reputation: Reputation | None = None,
        router: Router | None = None,
        rng: random.Random | None = None,
        params: Params | None = None,
        traffic: TrafficMeter | None = None,
    ) -> None:
        self.index = index
        self.inbox = inbox
        self.directory = directory
        self.transport = transport
        self.store = store
        self.items = items
        self.settings = settings
        self.clock = clock
        self.audit = audit
        self.reputation = reputation
        self.router = router
        self.rounds = 0
        self.last_round: datetime | None = None
        self.traffic = traffic
        self._spawn = spawn
        self._rng = rng or random.Random()  # noqa: S311  # nosec B311  # peer choice and jitter, not secrets
        self._params = params
        self._seq = 0
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._publishing = asyncio.Lock()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._backoff = Backoff(settings.interval, settings.backoff_cap, self._rng)
        self._caught_up = False
        self.outcomes: list[SessionOutcome] = []
        self.stem: Stem | None = None
        if router is not None:
            self.stem = Stem(
                router,
                index,
                directory,
                transport,
                clock=clock,
                launch=self._launch,
                audit=audit,
                rounds=lambda: self.rounds,
            )

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Run rounds forever (a background task); errors of one round are logged."""
        while True:
            try:
                await self.round()
            except StoreError as exc:
                log.warning("gossip round %d: store failed: %s", self.rounds, exc)
                if self.reputation is not None:
                    self.reputation.set_unhealthy(True)
            else:
                if self.reputation is not None:
                    self.reputation.set_unhealthy(False)
            spread = self.settings.interval * self.settings.jitter
            await asyncio.sleep(self.settings.interval + self._rng.uniform(-spread, spread))

    async def round(self) -> list[Peer]:
        """One round: publish own indicators, release stems, start sessions; returns the peers."""
        self.rounds += 1
        self.last_round = self.clock.now()
        self.inbox.quota.start_round()
        await self.directory.refresh()
        if self.stem is not None:
            self.stem.timers()
        await self.publish()
        chosen = self.choose(self.candidates())
        for peer in chosen:
            self._busy.add(peer.id)
            self._track_task(self._spawn(self._session(peer), f"gossip-session-{peer.id[:12]}"))
        return chosen

    def _track_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _launch(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        self._track_task(self._spawn(work, name))

    async def settle(self) -> None:
        """Wait until every session and stem push started so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel running sessions and stem pushes."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def status(self) -> dict[str, JsonValue]:
        """The gossip health shown on the dashboard overview (``StatusProvider``)."""
        approved = self.directory.snapshot.approved()
        quarantined = self.reputation.quarantined() if self.reputation is not None else frozenset()
        last = self.outcomes[-1] if self.outcomes else None
        traffic = self.traffic.peers() if self.traffic is not None else {}
        sent, received = self.traffic.totals() if self.traffic is not None else (0, 0)
        return {
            "status": "running",
            "rounds": self.rounds,
            "last_round": None if self.last_round is None else self.last_round.isoformat(),
            "interval_seconds": self.settings.interval,
            "approved_peers": len(approved),
            "reachable_peers": len(self.candidates()),
            "backing_off": shared_ids([p.id for p in approved if self._backoff.failures(p.id)]),
            "quarantined": shared_ids(quarantined),
            "sessions_running": len(self._busy),
            "items": {name: count for name, count in self.index.stats().items()},
            "healthy": self.reputation.healthy if self.reputation is not None else True,
            "last_session": None
            if last is None
            else {"peer": last.peer_id, "pushed": last.pushed, "pulled": last.pulled},
            "bytes_sent": sent,
            "bytes_received": received,
            "peers": dict[str, JsonValue](traffic),
            "warning": None
            if len(approved) >= MIN_HEALTHY_PEERS
            else f"only {len(approved)} approved peers: approve at least {MIN_HEALTHY_PEERS}",
        }

    def candidates(self) -> list[Peer]:
        """Approved peers that may be contacted now."""
        now = time.monotonic()
        return [
            peer
            for peer in self.directory.gossipable()
            if peer.id not in self._busy
            and self._backoff.ready(peer.id, now)
            and (self.reputation is None or self.reputation.allowed(peer.id))
        ]

    def choose(self, candidates: Sequence[Peer]) -> list[Peer]:
        """``peers_per_round`` peers: the first uniformly at random, the rest least recently met."""
        if not candidates:
            return []
        pool = list(candidates)
        first = pool.pop(self._rng.randrange(len(pool)))
        self._rng.shuffle(pool)  # ties broken at random
        pool.sort(key=lambda p: p.last_contact.timestamp() if p.last_contact else 0.0)
        return [first, *pool[: max(0, self.settings.peers_per_round - 1)]]

    async def _session(self, peer: Peer) -> None:
        started = time.monotonic()
        try:
            async with self._slots:
                view = self.index.view_for(peer.id, peer.groups, self.clock.now())
                started = time.monotonic()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can drop the
                # cancellation that stops gossip when this process stops leading.
                async with asyncio.timeout(self.settings.session_seconds):
                    outcome = await run_session(
                        self.transport, peer, view, self.inbox, params=self._params
                    )
        except (GossipError, TimeoutError) as exc:
            _count_session(peer.id, "failed", time.monotonic() - started)
            until = self._backoff.failed(peer.id, time.monotonic())
            if self.reputation is not None:
                self.reputation.record_session(peer.id, False)
            log.info(
                "session with %s failed (%s); next try in %.0f s",
                peer.id[:16],
                exc or exc.__class__.__name__,
                until - time.monotonic(),
            )
            # Store the lowered score too: a peer that only fails must not keep the last
            # good score in ``dtim peers list`` and the dashboard.
            await self._store_score(peer.id)
        except StoreError as exc:
            log.warning("session with %s: store failed: %s", peer.id[:16], exc)
        else:
            _count_session(peer.id, "ok", time.monotonic() - started, outcome)
            self._backoff.succeeded(peer.id)
            self.outcomes = [*self.outcomes[-99:], outcome]
            if self.reputation is not None:
                self.reputation.record_session(peer.id, True)
            self._seen(outcome.seen)
            if outcome.pushed:
                record(
                    self.audit,
                    {
                        "event": "indicators_shared",
                        "peer": peer.id,
                        "round": self.rounds,
                        "via": "push",
                        "count": outcome.pushed,
                        "indicators": shared_ids(outcome.pushed_indicators),
                    },
                )
            score = self.reputation.score(peer.id) if self.reputation is not None else None
            try:
                await self.items.touch_peer(peer.id, last_contact=self.clock.now(), score=score)
            except StoreError as exc:
                log.warning("cannot record contact with %s: %s", peer.id[:16], exc)
        finally:
            self._busy.discard(peer.id)

    async def _store_score(self, peer_id: PeerId) -> None:
        if self.reputation is None:
            return
        try:
            current = self.reputation.score(peer_id)
        except ValidationError:
            return  # revoked meanwhile: no longer scored
        try:
            await self.items.touch_peer(peer_id, score=current)
        except StoreError as exc:
            log.warning("cannot record the score of %s: %s", peer_id[:16], exc)

    # -- own indicators ---------------------------------------------------------------

    async def publish(self) -> int:
        """Track own indicators changed since the last call; returns how many.

        Rounds call it, and so does the peer API before it answers a session,
        so a peer always reconciles against the node's current indicators.
        """
        changed = 0
        async with self._publishing:
            # Catch up to the newest change as of now, not until a read comes back empty:
            # while watchers commit without pause, that read may never come, and every peer
            # session waiting on this lock would time out.
            head = await self.store.last_seq()
            while self._seq < head:
                rows = await self.store.changed_since(self._seq, limit=2000)
                if not rows:
                    break  # numbers handed out but not committed yet: the next call sees them
                for seq, indicator in rows:
                    self._seq = seq
                    if is_local(indicator):
                        # What the store held before this start was shared before (or is
                        # shared now): only what changes from here on walks the stem.
                        if self.stem is None:
                            self.index.set_local(indicator)
                        else:
                            self.stem.track(indicator, stem=self._caught_up)
                        changed += 1
                await adopt_verdicts(self.index, self.store, self.items, rows, self.clock.now())
            if self.stem is not None:
                self.stem.flush()
            self._caught_up = True
            return changed

    # -- what peers deliver -----------------------------------------------------------

    async def receive(self, sender: PeerId, delivered: Sequence[Item], *, stem: bool) -> Receipt:
        """Accept a push from ``sender`` (a stem hop when ``stem``)."""
        if stem and self.stem is not None:
            return await self.stem.receive(sender, delivered, self.inbox)
        receipt = await self.inbox.accept(sender, delivered, via="push")
        self._seen(receipt.seen)
        return receipt

    def _seen(self, keys: Sequence[bytes]) -> None:
        if self.stem is not None:
            self.stem.seen(keys)

    # -- aging ---------------------------------------------------------------------------

    async def sweep(self) -> tuple[int, int]:
        """Purge dead items and indicators whose confidence decayed to zero.

        Returns:
            ``(items, indicators)`` purged.
        """
        now = self.clock.now()
        dropped = self.index.purge(now)
        await self.items.purge_items(int(now.timestamp()))
        model = self.index.model
        cutoffs = {kind: (now - lifetime).timestamp() for kind, lifetime in model.lifetimes.items()}
        fallback = (now - model.fallback).timestamp()
        gone = await self.items.purge_indicators(cutoffs, fallback)
        for indicator in gone:
            self.index.drop_local(IndicatorId(indicator))
        if dropped or gone:
            log.info("aging: purged %d item(s) and %d indicator(s)", len(dropped), len(gone))
        return len(dropped), len(gone)

    async def sweep_forever(self, every: timedelta = timedelta(minutes=1)) -> None:
        """Run :meth:`sweep` periodically (a background task)."""
        while True:
            try:
                await self.sweep()
            except StoreError as exc:
                log.warning("aging sweep failed: %s", exc)
            await asyncio.sleep(every.total_seconds())


def _count_session(
    peer_id: str, result: str, seconds: float, outcome: SessionOutcome | None = None
) -> None:
    """Per-peer gossip figures for ``/metrics`` (label: the peer's short id)."""
    peer = peer_id[:16]
    METRICS.inc("dtim_gossip_sessions_total", peer=peer, result=result)
    METRICS.inc("dtim_gossip_session_seconds_total", seconds, peer=peer)
    if outcome is not None:
        METRICS.inc("dtim_gossip_reconcile_bytes_total", outcome.reconcile_bytes, peer=peer)
        METRICS.inc("dtim_gossip_items_total", outcome.pushed, peer=peer, direction="sent")
        METRICS.inc("dtim_gossip_items_total", outcome.pulled, peer=peer, direction="received")
