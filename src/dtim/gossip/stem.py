"""Dandelion++ on the wire: the node's own reports walk a stem before anyone offers them.

:class:`Stem` connects the pure router (:mod:`dtim.gossip.dandelion`) to the
node: a new own CLEAR/GREEN report is kept out of every view and pushed to the
epoch's stem successor (``{"stem": true}`` on the gossip endpoint); a stemmed
report received from a peer is relayed to the successor the router picks for
that inbound peer, or fluffed (put into the views) when the router says so;
timers release or resend what got stuck. Pushes are batched: one per
successor, not one per report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from dtim.errors import GossipError
from dtim.gossip.dandelion import Router
from dtim.gossip.directory import PeerDirectory
from dtim.gossip.inbox import AuditSink, Inbox, Receipt, record
from dtim.gossip.report import Item, ItemId, Report, item_id
from dtim.gossip.transport import GossipTransport
from dtim.gossip.views import ItemIndex
from dtim.model import Clock, Indicator, IndicatorId, Peer, PeerId
from dtim.model.indicator import JsonValue
from dtim.privacy import Destination

log = logging.getLogger("dtim.gossip")

Launch = Callable[[Coroutine[Any, Any, None], str], None]
"""Runs a coroutine as a named, tracked background task."""


def shared_ids(indicators: Iterable[str]) -> list[JsonValue]:
    """Sorted distinct indicator ids, as a JSON list for the audit log."""
    return list(sorted(set(indicators)))


class Stem:
    """Origin hiding for one node: stem own reports, relay or fluff others', run the timers.

    Args:
        router: the Dandelion++ routing state.
        index: the node's items (held items stay out of its views).
        directory: the node's peers.
        transport: pushes to peers.
        clock: time (reports are built for the successor now).
        launch: starts a tracked background task.
        audit: records which indicator ids went down the stem to which peer.
        rounds: the current round number (for the audit log).
    """

    def __init__(
        self,
        router: Router,
        index: ItemIndex,
        directory: PeerDirectory,
        transport: GossipTransport,
        *,
        clock: Clock,
        launch: Launch,
        audit: AuditSink | None = None,
        rounds: Callable[[], int] = lambda: 0,
    ) -> None:
        self.router = router
        self.index = index
        self.directory = directory
        self.transport = transport
        self.clock = clock
        self.audit = audit
        self._launch = launch
        self._rounds = rounds
        self._stems: dict[bytes, IndicatorId] = {}
        self._released: dict[IndicatorId, bytes] = {}
        self._outgoing: dict[PeerId, list[Item]] = {}
        index.holding = router.holding

    def track(self, indicator: Indicator, *, stem: bool = True) -> None:
        """Follow one own indicator; a new CLEAR/GREEN report goes down the stem (``stem``)."""
        router = self.router
        successors = router.successors
        if not successors or indicator.tlp.needs_recipients:
            self.index.set_local(indicator)
            return
        entry = self.index.set_local(indicator, held=stem)
        successor = self.directory.get(successors[0])
        made = None
        if successor is not None:
            made = entry.report_for(
                Destination.peer(successor.id, successor.groups),
                self.index.privacy,
                secret=self.index.secret,
                model=self.index.model,
                now=self.clock.now(),
            )
        if made is None:
            self.index.release(indicator.id)
            return
        key, report = made
        self.index.note_own(key)
        if not stem:
            self._released[indicator.id] = key
            return
        if self._released.get(indicator.id) == key:
            self.index.release(indicator.id)  # unchanged report, already out of the stem
            return
        if key in self._stems:
            return  # the same report is still on its way down the stem
        self._stems[key] = indicator.id
        target = router.originate(ItemId(key))
        if target is not None:
            self._stem_push(target, [report])

    def _stem_push(self, target: PeerId, items: list[Item]) -> None:
        self._outgoing.setdefault(target, []).extend(items)

    def flush(self) -> None:
        """Send what was queued for the stem: one push per successor, not one per report."""
        outgoing, self._outgoing = self._outgoing, {}
        for target, items in outgoing.items():
            peer = self.directory.approved(target)
            if peer is not None:
                self._launch(self._push(peer, items), f"gossip-stem-{target[:12]}")

    async def _push(self, peer: Peer, items: list[Item]) -> None:
        try:
            await self.transport.push(peer, items, stem=True)
        except GossipError as exc:
            log.info("stem push to %s failed: %s (timers will retry)", peer.id[:16], exc)
            return
        record(
            self.audit,
            {
                "event": "indicators_shared",
                "peer": peer.id,
                "round": self._rounds(),
                "via": "stem",
                "count": len(items),
                "indicators": shared_ids([item.indicator for item in items]),
            },
        )

    def timers(self) -> None:
        """Follow the approved peers, then fluff or resend what the router's timers say."""
        router = self.router
        router.set_peers([PeerId(p.id) for p in self.directory.gossipable()])
        fluff, resend = router.due()
        for key in fluff:
            self._fluffed(key)
        if fluff:
            self.index.touch()
        for key, target in resend:
            own = self._stems.get(key)
            entry = self.index.local(own) if own is not None else None
            report = entry and next(
                (made[1] for made in entry.reports.values() if made and made[0] == key), None
            )
            if isinstance(report, Report):
                self._stem_push(target, [report])
        self.flush()

    def _fluffed(self, key: bytes) -> None:
        own = self._stems.pop(key, None)
        if own is not None:
            self._released[own] = key
            self.index.release(own)

    def seen(self, keys: Sequence[bytes]) -> None:
        """These items came through ordinary gossip: they are fluffed everywhere."""
        for key in keys:
            self.router.seen_in_gossip(ItemId(key))
            self._fluffed(key)

    async def receive(self, sender: PeerId, delivered: Sequence[Item], inbox: Inbox) -> Receipt:
        """Accept a stem hop from ``sender``: relay, fluff, or drop each report."""
        router = self.router
        routes: dict[bytes, PeerId | None] = {}
        on_stem: set[bytes] = set()
        for item in delivered:
            key = item_id(item)
            # A report we hold on the stem (ours, or one we relayed) that comes round again
            # is a repeat or a loop: the router decides. Any other known item is a duplicate.
            if key in self._stems or router.holding(ItemId(key)):
                on_stem.add(key)
                routes[key] = router.relay(ItemId(key), sender)
            elif not self.index.known(key):
                routes[key] = router.relay(ItemId(key), sender)
        receipt = await inbox.accept(sender, delivered, via="stem")
        forward: dict[PeerId, list[Item]] = {}
        accepted = set(receipt.new) | on_stem
        for item in delivered:
            key = item_id(item)
            if key not in routes:
                continue
            target = routes[key]
            if key not in accepted:
                router.seen_in_gossip(ItemId(key))  # refused: do not keep it on the stem
            elif target is None:
                self._fluffed(key)
            else:
                forward.setdefault(target, []).append(item)
        self.index.touch()
        for target, items in forward.items():
            self._stem_push(target, items)
        self.flush()
        return receipt
