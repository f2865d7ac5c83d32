"""What a node holds for gossip, and the per-peer views that reconciliation runs over.

The :class:`ItemIndex` holds every live item of the node in memory:

* items received from peers (their CRDT merge in a :class:`~dtim.gossip.merge.MergeState`),
  each with whether it may be relayed: AMBER, AMBER+STRICT and RED never are;
  tombstones (CLEAR/GREEN) are, whoever issued them, and each records whether
  it applies on this node (:class:`~dtim.gossip.issuers.IssuerCap`);
* the node's own indicators (:class:`~dtim.gossip.outbox.LocalEntry`), whose
  reports are derived per destination and never stored.

:meth:`ItemIndex.view_for` gives one peer's view: exactly the items that
peer may receive, decided by the privacy filter for that destination, so
nothing it may not see ever enters its fingerprints. Items that Dandelion++
still holds on the stem stay out of every view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from dtim.aging import DecayModel
from dtim.errors import SignatureError
from dtim.gossip.corroboration import Caps
from dtim.gossip.issuers import IssuerCap
from dtim.gossip.merge import MergeState, Verify, View, deadline
from dtim.gossip.outbox import LocalEntry
from dtim.gossip.ranges import SortedItems
from dtim.gossip.report import Item, ItemId, Tombstone
from dtim.model import Indicator, IndicatorId
from dtim.model.indicator import lift_verdict
from dtim.privacy import Destination, PrivacyFilter

Holding = Callable[[ItemId], bool]
"""True while Dandelion++ keeps an item on the stem (out of every view)."""


@dataclass(slots=True)
class Held:
    """A received item: may it be relayed, when it dies, and what the privacy filter checks.

    Attributes:
        item: the report or tombstone.
        relay: False for AMBER/RED (never passed on) and for anything refused onward.
        deadline: Unix second from which the item is dead.
        subject: the indicator a report describes (checked by the filter per destination).
        key: the reconciliation sort key ``(timestamp, id)``.
        applied: for a tombstone, whether it marks indicators on this node (the issuer cap).
    """

    item: Item
    relay: bool
    deadline: int
    subject: Indicator | None
    key: tuple[int, bytes] = (0, b"")
    applied: bool = True


@dataclass(frozen=True, slots=True)
class PeerView:
    """One peer's view: the sorted keys and the items behind them."""

    peer_id: str
    keys: SortedItems
    items: Mapping[bytes, Item]

    def __len__(self) -> int:
        return len(self.items)


def _never(_item: ItemId) -> bool:
    return False


_ANY_PEER = Destination.peer("any-approved-peer")


class ItemIndex:
    """Every live item of the node, and its per-peer views.

    Args:
        privacy: the node's privacy filter (decides what each destination may receive).
        model: the decay model (item deadlines, report expiry).
        secret: the node's reporter secret (its own reports' token).
        verify: checks tombstone signatures.
        caps: corroboration caps for the merged view.
        issuers: which received tombstones apply here (default: 100 a day per issuer,
            none approved).
    """

    def __init__(
        self,
        privacy: PrivacyFilter,
        model: DecayModel,
        *,
        secret: bytes,
        verify: Verify,
        caps: Caps | None = None,
        issuers: IssuerCap | None = None,
    ) -> None:
        self.privacy = privacy
        self.model = model
        self.secret = secret
        self.issuers = issuers or IssuerCap()
        self._verify = verify
        self.merge = MergeState(verify, caps)
        self.holding: Holding = _never
        self._received: dict[ItemId, Held] = {}
        self._local: dict[IndicatorId, LocalEntry] = {}
        self._own: set[bytes] = set()
        self._held_local: set[IndicatorId] = set()
        self._version = 0
        self._views: dict[tuple[str, tuple[str, ...]], tuple[int, PeerView]] = {}

    # -- received items -------------------------------------------------------------

    def known(self, key: bytes) -> bool:
        """True for an item already held, or one of the node's own reports."""
        return key in self._received or key in self._own

    def check(self, item: Item) -> None:
        """Raise unless the item could be added (a tombstone must verify).

        Raises:
            SignatureError: a tombstone whose signature does not verify.
        """
        if isinstance(item, Tombstone) and not self._verify(item):
            raise SignatureError(f"tombstone for {item.indicator} is not signed by {item.issuer}")

    def add_received(
        self,
        key: ItemId,
        item: Item,
        *,
        relay: bool,
        subject: Indicator | None,
        at: float,
        verified: bool = False,
    ) -> bool:
        """Hold a received item; True when it was new.

        Args:
            at: when it arrived (Unix seconds): the day a tombstone counts against
                its issuer's cap.
            verified: :meth:`check` passed for this item just now (a tombstone's
                signature is then not verified a second time).

        Raises:
            SignatureError: a tombstone whose signature does not verify.
        """
        if self.known(key):
            return False
        self.merge.add(item, key, verified=verified)
        applied = not isinstance(item, Tombstone) or self.issuers.admit(item.issuer, at)
        if relay and subject is not None:
            # Received items that may be relayed at all are CLEAR or GREEN, scope private:
            # the marking lets them reach any approved peer, so the filter's answer is the
            # same for every peer and is decided once, here.
            relay = self.privacy.refusal(subject, _ANY_PEER) is None
        self._received[key] = Held(
            item, relay, deadline(item, self.model), subject, (item.timestamp, key), applied
        )
        self._version += 1
        return True

    def forget(self, held: Sequence[tuple[ItemId, Item]]) -> None:
        """Take received items back out (their delivery could not be stored)."""
        self.merge.forget(held)
        for key, _ in held:
            self._received.pop(key, None)
        if held:
            self._version += 1

    def received(self) -> Iterator[tuple[ItemId, Held]]:
        """Every received item held."""
        yield from self._received.items()

    def merged(self, indicator: IndicatorId, now: datetime) -> View | None:
        """The CRDT view of one indicator from the received items."""
        return self.merge.view(indicator, now)

    def applies(self, key: ItemId) -> bool:
        """True when a held item takes effect on this node (False: a tombstone over the cap)."""
        held = self._received.get(key)
        return held is not None and held.applied

    def standing(self, indicator: IndicatorId, now: datetime) -> tuple[Tombstone, ...]:
        """The unexpired tombstones for ``indicator`` that apply on this node."""
        return tuple(t for key, t in self.merge.standing(indicator, now) if self.applies(key))

    # -- own indicators -----------------------------------------------------------------

    def set_local(self, indicator: Indicator, *, held: bool = False) -> LocalEntry:
        """Track the current state of one of the node's own indicators.

        Args:
            indicator: the local indicator, as stored.
            held: keep it out of every view until :meth:`release` (Dandelion++ origin hold).
        """
        entry = LocalEntry(indicator)
        self._local[indicator.id] = entry
        if held:
            self._held_local.add(indicator.id)
        else:
            self._held_local.discard(indicator.id)
        self._version += 1
        return entry

    def local(self, indicator: IndicatorId) -> LocalEntry | None:
        """The node's own entry for an indicator."""
        return self._local.get(indicator)

    def release(self, indicator: IndicatorId) -> None:
        """Let a held local indicator into the views."""
        if indicator in self._held_local:
            self._held_local.discard(indicator)
            self._version += 1

    def is_held(self, indicator: IndicatorId) -> bool:
        """True while a local indicator is kept out of the views."""
        return indicator in self._held_local

    def drop_local(self, indicator: IndicatorId) -> None:
        """Forget a local indicator (purged or deleted)."""
        if self._local.pop(indicator, None) is not None:
            self._held_local.discard(indicator)
            self._version += 1

    def note_own(self, key: bytes) -> None:
        """Remember an id as one of our own reports (so it is not taken back as received)."""
        self._own.add(key)

    def touch(self) -> None:
        """Something the views depend on changed outside the index (a stem was released)."""
        self._version += 1

    # -- views --------------------------------------------------------------------------

    def view_for(self, peer_id: str, groups: tuple[str, ...], now: datetime) -> PeerView:
        """Exactly what ``peer_id`` may receive now, as a sorted key set for reconciliation."""
        cache_key = (peer_id, groups)
        cached = self._views.get(cache_key)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        destination = Destination.peer(peer_id, groups)
        moment = int(now.timestamp())
        chosen: dict[bytes, Item] = {}
        keys: list[tuple[int, bytes]] = []
        for indicator_key, entry in self._local.items():
            if indicator_key in self._held_local:
                continue
            made = entry.report_for(
                destination, self.privacy, secret=self.secret, model=self.model, now=now
            )
            if made is None:
                continue
            key, report = made
            self._own.add(key)
            if (
                deadline(report, self.model) > moment
                and not self.holding(key)
                and key not in chosen
            ):
                chosen[key] = report
                keys.append((report.timestamp, key))
        local = self._local
        for key, held in self._received.items():
            if not held.relay or held.deadline <= moment or key in chosen or self.holding(key):
                continue
            own = local.get(held.item.indicator) if local else None
            if (
                own is not None
                and self.privacy.refusal(_marking(own, held), destination) is not None
            ):
                continue  # the node's own marking of the indicator is stricter: it wins
            chosen[key] = held.item
            keys.append(held.key)
        view = PeerView(peer_id, SortedItems(keys), chosen)
        if len(self._views) > 1024:
            self._views.clear()
        self._views[cache_key] = (self._version, view)
        return view

    # -- aging ----------------------------------------------------------------------------

    def purge(self, now: datetime) -> list[ItemId]:
        """Drop every received item past its deadline; returns their ids."""
        dropped = self.merge.purge(now, self.model)
        for key in dropped:
            self._received.pop(key, None)
        if dropped:
            self._version += 1
        return dropped

    def stats(self) -> dict[str, int]:
        """Counts for status pages."""
        return {
            "received": len(self._received),
            "local": len(self._local),
            "held": len(self._held_local),
        }


def _marking(own: LocalEntry, held: Held) -> Indicator:
    # A verdict makes the node's own indicator scope local; its tombstone must still
    # travel as far as the indicator did before the verdict.
    return lift_verdict(own.indicator) if isinstance(held.item, Tombstone) else own.indicator
