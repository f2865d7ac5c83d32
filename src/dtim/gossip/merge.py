"""Merging reports: a state-based CRDT whose state is the set of items.

The state of an indicator is the set of reports and tombstones received for
it. Union is commutative, associative and idempotent, so any order and any
duplication of deliveries gives the same state on every node; everything
else is derived from the set on read:

* ``first_seen`` / ``last_seen``: min / max report time bucket;
* ``tags``: union of the reports' tags;
* ``reporters``: number of distinct blinded tokens;
* ``base``: the per-reporter claims combined under the corroboration caps
  (:meth:`Caps.combine`: one reporter at most 40, two 60, three or more 100);
* the current confidence: ``base`` decayed since ``last_seen`` by the aging
  model, unless a valid tombstone (a signed ``false_positive``/``revoked``
  verdict that has not expired) suppresses it.

Tombstones are checked with a ``verify(tombstone)`` callable when they are
added (the node's is :func:`~dtim.gossip.report.verify_tombstone`, which
checks the tombstone against the key it carries), so this module needs no key
material. The merge applies no per-node policy: whether a node lets a
verified tombstone change its indicators (the daily cap on unapproved
issuers) is decided outside it (:class:`~dtim.gossip.issuers.IssuerCap`), so
the derived view stays the same in any order of deliveries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dtim.aging import DecayModel, Verdict, current_confidence, expired_on_arrival
from dtim.errors import SignatureError
from dtim.gossip.corroboration import Caps
from dtim.gossip.report import Item, ItemId, Report, Tombstone, item_id
from dtim.model.ids import IndicatorId
from dtim.model.tlp import Tlp

Verify = Callable[[Tombstone], bool]
"""``verify(tombstone)``: True when its issuer signed it."""


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def deadline(item: Item, model: DecayModel) -> int:
    """Unix second from which an item is dead: its own expiry, or sooner by the local model."""
    if isinstance(item, Tombstone):
        return item.expires
    return min(item.expires, item.bucket + int(model.lifetime(item.type).total_seconds()))


def admissible(item: Item, now: datetime, model: DecayModel) -> bool:
    """False for an item already dead on arrival: it must be refused, not stored."""
    if isinstance(item, Tombstone):
        return now < _at(item.expires)
    return not expired_on_arrival(item.type, _at(item.bucket), now, model, _at(item.expires))


@dataclass(frozen=True, slots=True)
class View:
    """What a node derives about one indicator from its items."""

    indicator: IndicatorId
    type: str
    value: str
    tlp: Tlp
    recipients: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    tags: tuple[str, ...]
    reporters: int
    base: int
    verdict: Verdict | None

    def confidence(self, now: datetime, model: DecayModel) -> int:
        """Current confidence: ``base`` decayed since ``last_seen``; 0 under a verdict."""
        if self.verdict is not None:
            return 0
        return current_confidence(self.base, self.type, self.last_seen, now, model)


@dataclass(slots=True)
class _Entry:
    reports: dict[ItemId, Report] = field(default_factory=dict)
    tombstones: dict[ItemId, Tombstone] = field(default_factory=dict)


class MergeState:
    """Every item a node holds, by indicator; adding is set union.

    Args:
        verify: checks tombstone signatures (see :data:`Verify`).
        caps: the corroboration caps.
    """

    def __init__(self, verify: Verify, caps: Caps | None = None) -> None:
        self._verify = verify
        self._caps = caps or Caps()
        self._entries: dict[IndicatorId, _Entry] = {}
        self._ids: set[ItemId] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def add(self, item: Item, key: ItemId | None = None, *, verified: bool = False) -> bool:
        """Union one item in; True when it was new.

        Args:
            item: a report or tombstone.
            key: its id when the caller already computed it.
            verified: the caller has just checked the tombstone's signature itself.

        Raises:
            SignatureError: a tombstone whose signature does not verify.
        """
        key = key if key is not None else item_id(item)
        if key in self._ids:
            return False
        entry = self._entries.setdefault(item.indicator, _Entry())
        if isinstance(item, Tombstone):
            if not verified and not self._verify(item):
                if not entry.reports and not entry.tombstones:
                    del self._entries[item.indicator]
                raise SignatureError(
                    f"tombstone for {item.indicator} is not signed by {item.issuer}"
                )
            entry.tombstones[key] = item
        else:
            entry.reports[key] = item
        self._ids.add(key)
        return True

    def forget(self, held: Iterable[tuple[ItemId, Item]]) -> None:
        """Take items back out (their delivery could not be stored)."""
        for key, item in held:
            entry = self._entries.get(item.indicator)
            if entry is None or key not in self._ids:
                continue
            entry.reports.pop(key, None)
            entry.tombstones.pop(key, None)
            if not entry.reports and not entry.tombstones:
                del self._entries[item.indicator]
            self._ids.discard(key)

    def update(self, items: Iterable[Item]) -> int:
        """Union many items; returns how many were new."""
        return sum(self.add(item) for item in items)

    def items(self) -> Iterator[tuple[ItemId, Item]]:
        """Every ``(id, item)`` held, in no particular order."""
        for entry in self._entries.values():
            yield from entry.reports.items()
            yield from entry.tombstones.items()

    def reporters(self, indicator: IndicatorId) -> int:
        """Distinct reporter tokens held for ``indicator``."""
        entry = self._entries.get(indicator)
        return len({r.reporter for r in entry.reports.values()}) if entry else 0

    def standing(
        self, indicator: IndicatorId, now: datetime
    ) -> tuple[tuple[ItemId, Tombstone], ...]:
        """The ``(id, tombstone)`` pairs held for ``indicator`` not expired at ``now``."""
        entry = self._entries.get(indicator)
        if entry is None:
            return ()
        moment = now.timestamp()
        return tuple((k, t) for k, t in entry.tombstones.items() if moment < t.expires)

    def indicators(self) -> frozenset[IndicatorId]:
        """Indicators with at least one item."""
        return frozenset(self._entries)

    def purge(self, now: datetime, model: DecayModel) -> list[ItemId]:
        """Drop every item past its deadline (the same moment on every node); returns their ids."""
        moment = now.timestamp()
        dropped: list[ItemId] = []
        for indicator in list(self._entries):
            entry = self._entries[indicator]
            for group in (entry.reports, entry.tombstones):
                for key in [k for k, v in group.items() if deadline(v, model) <= moment]:
                    del group[key]
                    dropped.append(key)
            if not entry.reports and not entry.tombstones:
                del self._entries[indicator]
        self._ids.difference_update(dropped)
        return dropped

    def view(self, indicator: IndicatorId, now: datetime) -> View | None:
        """The derived view of one indicator, or None without any report."""
        entry = self._entries.get(indicator)
        if entry is None or not entry.reports:
            return None
        reports = list(entry.reports.values())
        claims: dict[str, int] = {}
        for report in reports:
            claims[report.reporter] = max(claims.get(report.reporter, 0), report.confidence)
        tlp = Tlp.CLEAR
        for report in reports:
            tlp = tlp.stricter(report.tlp)
        moment = now.timestamp()
        verdicts = sorted(t.verdict for t in entry.tombstones.values() if moment < t.expires)
        first = reports[0]
        return View(
            indicator=indicator,
            type=first.type,
            value=first.value,
            tlp=tlp,
            recipients=tuple(sorted({r for report in reports for r in report.recipients})),
            first_seen=_at(min(r.bucket for r in reports)),
            last_seen=_at(max(r.bucket for r in reports)),
            tags=tuple(sorted({t for report in reports for t in report.tags})),
            reporters=len(claims),
            base=self._caps.combine(claims.values()),
            verdict=verdicts[0] if verdicts else None,
        )
