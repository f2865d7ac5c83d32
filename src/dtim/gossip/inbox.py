"""Taking items from a peer: checks, caps, the CRDT merge and the store.

Every item a peer delivers — pushed to the gossip endpoint, pulled after a
reconciliation session, or stemmed — goes through :meth:`Inbox.accept`:

1. already held (or one of our own reports): a duplicate, nothing to do;
2. dead on arrival (its expiry or our decay curve says so): refused, so
   purged indicators never come back;
3. malformed for its kind, a TLP:RED report that does not name this node,
   a TLP:AMBER report addressed only to other nodes (every recipient a node
   id, none of them ours; group names cannot be checked here), or a
   tombstone that does not verify against the key it carries (or whose key
   does not hash to its issuer id): invalid, counted against the sender;
4. on a warninglist (own networks, reserved ranges, benign infrastructure):
   refused and counted against the sender;
5. beyond the sender's quota of new reports this round: deferred (the next
   session offers them again); the best corroborated go first
   (:func:`~dtim.gossip.corroboration.admission_order`);
6. otherwise stored (``gossip_items``), merged (set union), and the
   indicator's merged view written to the indicators table, with the
   corroboration caps applied, in the same transaction as the items. AMBER
   and RED are stored without recipients and marked never to be relayed.
   Tombstones are relayed like CLEAR/GREEN reports, whoever issued them (each
   carries its issuer's key, so any node can check it). A new tombstone marks
   the stored indicator (:func:`~dtim.gossip.verdicts.apply_tombstone`), and
   while one stands no report writes the indicator again, unless it is beyond
   the daily cap of its issuer (an issuer this node has not approved,
   :class:`~dtim.gossip.issuers.IssuerCap`): then it is held and relayed but
   changes nothing here, and is counted in ``dtim_gossip_verdicts_capped_total``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from dtim.errors import CryptoError, DTIMError, SignatureError, ValidationError
from dtim.gossip.corroboration import NewReportQuota, admission_order
from dtim.gossip.merge import View, admissible, deadline
from dtim.gossip.outbox import GOSSIP_SOURCE
from dtim.gossip.report import Item, ItemId, Report, Tombstone, encode, item_id
from dtim.gossip.reputation import Reputation
from dtim.gossip.verdicts import apply_tombstone
from dtim.gossip.views import ItemIndex
from dtim.metrics import METRICS
from dtim.model import Clock, Indicator, IndicatorId, PeerId, Scope, Tlp, make_indicator
from dtim.model.indicator import JsonValue
from dtim.store import Store
from dtim.store.gossip import GossipStore, StoredItem

log = logging.getLogger("dtim.gossip")

REFUSED_METRIC = "dtim_gossip_items_refused_total"
METRICS.declare(REFUSED_METRIC, "counter", "Items from peers refused, by reason.")
CAPPED_METRIC = "dtim_gossip_verdicts_capped_total"
METRICS.declare(
    CAPPED_METRIC,
    "counter",
    "Tombstones held and relayed but not applied: beyond their unapproved issuer's daily cap.",
)
_NODE_ID = re.compile(r"^[0-9a-f]{64}$")


def addressed_elsewhere(report: Report, node_id: str) -> bool:
    """True when a RED or AMBER report is for named recipients that do not include us.

    RED must name this node. AMBER may name groups, which only its origin can
    resolve; it is refused only when every recipient is a node id and none is ours.
    """
    if not report.tlp.needs_recipients or node_id in report.recipients:
        return False
    if report.tlp is Tlp.RED:
        return True
    return all(_NODE_ID.match(recipient) for recipient in report.recipients)


class AuditSink(Protocol):
    """Where security events go (a :class:`dtim.crypto.auditlog.AuditLog`)."""

    def append(self, event: Mapping[str, JsonValue]) -> None:
        """Record one event."""
        ...


def record(audit: AuditSink | None, event: Mapping[str, JsonValue]) -> None:
    """Append to the audit log; a failing log is reported, never fatal to gossip."""
    if audit is None:
        return
    try:
        audit.append(event)
    except CryptoError as exc:
        log.warning("audit log write failed: %s", exc)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of a delivery.

    Attributes:
        new: ids of items stored now.
        seen: ids of every well-formed item delivered (new and duplicates).
        duplicates: items already held.
        expired: items dead on arrival.
        invalid: malformed items, RED not naming us, tombstones that do not verify.
        warninglisted: items refused by a warninglist.
        deferred: new items beyond the sender's quota this round.
        capped: new tombstones held and relayed but not applied (their issuer's daily cap).
    """

    new: tuple[ItemId, ...] = ()
    seen: tuple[ItemId, ...] = ()
    duplicates: int = 0
    expired: int = 0
    invalid: int = 0
    warninglisted: int = 0
    deferred: int = 0
    capped: int = 0

    @property
    def received(self) -> int:
        """How many items were new and stored."""
        return len(self.new)


@dataclass
class _Sorting:
    fresh: list[tuple[ItemId, Item, Indicator | None]] = field(default_factory=list)
    seen: list[ItemId] = field(default_factory=list)
    duplicates: int = 0
    expired: int = 0
    invalid: list[str] = field(default_factory=list)
    warninglisted: list[str] = field(default_factory=list)


def subject_of(report: Report) -> Indicator:
    """The indicator a received report describes, as the node stores it.

    AMBER and RED lose their recipients: stored without any, they can never
    reach anyone again (the privacy filter finds no recipient to match).

    Raises:
        ValidationError: the report's type or value is not acceptable here.
    """
    moment = datetime.fromtimestamp(report.bucket, UTC)
    return make_indicator(
        report.value,
        report.type,
        now=moment,
        confidence=report.confidence,
        tags=report.tags,
        tlp=report.tlp,
        scope=Scope.PRIVATE,
        sources=(GOSSIP_SOURCE,),
        first_seen=moment,
        last_seen=moment,
    )


def indicator_from_view(view: View, *, sightings: int, now: datetime) -> Indicator:
    """The indicators-table row for a merged view (confidence = the capped ``base``)."""
    return make_indicator(
        view.value,
        view.type,
        now=now,
        confidence=view.base,
        tags=view.tags,
        tlp=view.tlp,
        scope=Scope.PRIVATE,
        sources=(GOSSIP_SOURCE,),
        sightings=max(1, sightings),
        first_seen=view.first_seen,
        last_seen=view.last_seen,
    )


class Inbox:
    """Accepts items from peers into the index, the gossip table and the indicators table.

    Args:
        index: the node's items.
        store: the indicators store.
        items: the gossip tables.
        node_id: this node's id (a TLP:RED report must name it); its ``aliases``
            attribute holds the ids from before an identity rollover, which peers
            may still name (set at runtime).
        quota: new reports per peer per round.
        clock: time.
        reputation: penalties and credits per peer (optional).
        audit: the audit log (optional).
    """

    def __init__(
        self,
        index: ItemIndex,
        store: Store,
        items: GossipStore,
        *,
        node_id: str,
        quota: NewReportQuota,
        clock: Clock,
        reputation: Reputation | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.index = index
        self.store = store
        self.items = items
        self.node_id = node_id
        self.aliases: frozenset[str] = frozenset()
        self.quota = quota
        self.clock = clock
        self.reputation = reputation
        self.audit = audit
        self._lock = asyncio.Lock()

    async def accept(self, sender: PeerId, delivered: Sequence[Item], *, via: str) -> Receipt:
        """Check, store and merge what ``sender`` delivered.

        Args:
            sender: the approved peer that delivered the items.
            delivered: decoded items.
            via: ``push``, ``pull`` or ``stem`` (for the audit log).

        Raises:
            StoreError: the store failed; nothing of this delivery was kept.
        """
        async with self._lock:
            now = self.clock.now()
            sorting = self._sort(delivered, now)
            granted = self.quota.take(sender, len(sorting.fresh))
            fresh = self._admission(sorting.fresh)[:granted]
            deferred = len(sorting.fresh) - granted
            stamp = now.timestamp()
            stored = [
                StoredItem(
                    item_id=key,
                    stamp=item.timestamp,
                    indicator_id=item.indicator,
                    expires=deadline(item, self.index.model),
                    relay=_relayable(item),
                    received_from=sender,
                    received_at=stamp,
                    body=encode(item),
                )
                for key, item, _ in fresh
            ]
            added: list[ItemId] = []
            touched: dict[str, int] = {}
            tombstones: list[Tombstone] = []
            capped: list[Tombstone] = []
            for key, item, subject in fresh:
                if self.index.add_received(  # sorting ran check() on each tombstone
                    key, item, relay=_relayable(item), subject=subject, at=stamp, verified=True
                ):
                    added.append(key)
                    if isinstance(item, Report):
                        touched[item.indicator] = touched.get(item.indicator, 0) + 1
                    elif self.index.applies(key):
                        tombstones.append(item)
                    else:
                        capped.append(item)
            views = self._merged_views(sender, touched, now)
            try:
                # The items and what they make of their indicators in one transaction: a
                # process killed between two writes would hold items whose indicator was
                # never written, and reconciliation would never offer them again.
                await self.items.add_items(stored, [row for _, row in views])
            except BaseException:
                self.index.forget([(key, item) for key, item, _ in fresh])
                raise
            self._credit(sender, [view for view, _ in views])
            for tombstone in tombstones:
                await apply_tombstone(self.store, tombstone, now)
            self._account(sender, sorting, deferred, via)
            self._capped(sender, capped, via)
            return Receipt(
                new=tuple(added),
                seen=tuple(sorting.seen),
                duplicates=sorting.duplicates,
                expired=sorting.expired,
                invalid=len(sorting.invalid),
                warninglisted=len(sorting.warninglisted),
                deferred=deferred,
                capped=len(capped),
            )

    def _admission(
        self, fresh: list[tuple[ItemId, Item, Indicator | None]]
    ) -> list[tuple[ItemId, Item, Indicator | None]]:
        # Under quota pressure the best corroborated reports go first (tombstones before
        # any report), so a flood of single-source claims cannot crowd them out.
        reports = [item for _, item, _ in fresh if isinstance(item, Report)]
        if len(reports) < 2:
            return fresh
        rank = {
            id(r): i for i, r in enumerate(admission_order(reports, self.index.merge.reporters))
        }
        return sorted(fresh, key=lambda entry: rank.get(id(entry[1]), -1))

    def _sort(self, delivered: Sequence[Item], now: datetime) -> _Sorting:
        sorting = _Sorting()
        batch: set[bytes] = set()
        for item in delivered:
            key = item_id(item)
            if key in batch or self.index.known(key):
                sorting.duplicates += 1
                sorting.seen.append(key)
                continue
            batch.add(key)
            if not admissible(item, now, self.index.model):
                sorting.expired += 1
                continue
            subject: Indicator | None = None
            try:
                if isinstance(item, Tombstone):
                    self.index.check(item)
                else:
                    if all(
                        addressed_elsewhere(item, ours) for ours in (self.node_id, *self.aliases)
                    ):
                        sorting.invalid.append(item.indicator)
                        continue
                    subject = subject_of(item)
            except (ValidationError, SignatureError):
                sorting.invalid.append(item.indicator)
                continue
            if subject is not None and not self.index.privacy.accept_from_peer(subject).accepted:
                sorting.warninglisted.append(item.indicator)
                continue
            sorting.seen.append(key)
            sorting.fresh.append((key, item, subject))
        return sorting

    def _merged_views(
        self, sender: PeerId, touched: dict[str, int], now: datetime
    ) -> list[tuple[View, Indicator]]:
        """The merged view of each touched indicator and the row it writes (none while a
        tombstone stands: no report brings the indicator back)."""
        out: list[tuple[View, Indicator]] = []
        for indicator, count in touched.items():
            key = IndicatorId(indicator)
            view = self.index.merged(key, now)
            # Only a tombstone that applies here keeps the indicator out (not one over the cap).
            if view is None or self.index.standing(key, now):
                continue
            try:
                out.append((view, indicator_from_view(view, sightings=count, now=now)))
            except DTIMError as exc:
                log.warning("indicator %s from %s not stored: %s", indicator, sender, exc)
        return out

    def _credit(self, sender: PeerId, views: Sequence[View]) -> None:
        if self.reputation is None:
            return
        for view in views:
            self.reputation.record_first_delivery(sender, view.indicator)
            if view.reporters >= 3:
                self.reputation.record_corroborated(view.indicator)

    def _account(self, sender: PeerId, sorting: _Sorting, deferred: int, via: str) -> None:
        if self.reputation is not None:
            if sorting.invalid:
                self.reputation.record_invalid(sender, len(sorting.invalid))
            if sorting.warninglisted:
                self.reputation.record_warninglist(sender, len(sorting.warninglisted))
        for reason, ids in (("invalid", sorting.invalid), ("warninglist", sorting.warninglisted)):
            if ids:
                METRICS.inc(REFUSED_METRIC, len(ids), reason=reason)
                log.warning("refused %d %s item(s) from peer %s", len(ids), reason, sender[:16])
                record(
                    self.audit,
                    {
                        "event": "items_refused",
                        "peer": sender,
                        "reason": reason,
                        "via": via,
                        "count": len(ids),
                        "indicators": list(ids[:200]),
                    },
                )
        if deferred:
            METRICS.inc(REFUSED_METRIC, deferred, reason="deferred")
            log.info("peer %s is over its quota this round: %d deferred", sender[:16], deferred)

    def _capped(self, sender: PeerId, capped: Sequence[Tombstone], via: str) -> None:
        if not capped:
            return
        METRICS.inc(CAPPED_METRIC, len(capped))
        issuers = sorted({t.issuer for t in capped})
        log.warning(
            "%d tombstone(s) from peer %s held but not applied: issuer(s) %s over the daily cap",
            len(capped),
            sender[:16],
            ", ".join(i[:16] for i in issuers),
        )
        record(
            self.audit,
            {
                "event": "verdicts_capped",
                "peer": sender,
                "via": via,
                "count": len(capped),
                "issuers": list(issuers[:50]),
                "indicators": [t.indicator for t in capped[:200]],
            },
        )


def _relayable(item: Item) -> bool:
    # AMBER, AMBER+STRICT and RED go to their named recipients only, never further.
    # Tombstones (always CLEAR/GREEN) are relayed whoever issued them: each carries its
    # issuer's key, so every node can check it and the verdict reaches the whole mesh.
    return not item.tlp.needs_recipients
