"""Dandelion++ origin hiding: a report first walks a single-successor stem.

Per epoch (about ten minutes) every node picks two stem successors among its
approved peers and decides once whether it relays stems (probability 0.9)
or diffuses them (0.1), so each hop ends the stem with probability 0.1. The
node's own reports always take one fixed successor; a report stemmed in by
a given inbound peer always goes on to the same successor (a fixed mapping
per inbound peer, drawn from the two). A node that diffuses, or that sees a
stem report come back from a different peer (a loop), *fluffs* it: puts it
into its reconciliation set, after which ordinary gossip spreads it.

Timers keep a lost stem from losing the report. A relay fluffs a report it
stemmed when its embargo (random, exponential) runs out before the report
came back through gossip; a repeat from the same inbound peer is forwarded
again (at most ``origin_attempts`` times), one from another peer is a loop
and is fluffed. The origin holds its own report back from its own
reconciliation set for two gossip intervals; if by then the report has not
come back through gossip, it sends it down the same stem again (a repeat is
not a loop), and it fluffs only after the last attempt. When the report
does come back through gossip, the origin still holds it five more
intervals before offering it (see :meth:`Router.seen_in_gossip`). Until a
report is released, a node keeps it out of its reconciliation set: it may
use it, but never offers it (:meth:`Router.holding`).

Everything is driven by an injected clock and random generator; the module
does no I/O. The caller delivers stem pushes and reports items seen
through gossip with :meth:`Router.seen_in_gossip`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dtim.errors import ValidationError
from dtim.gossip.report import ItemId
from dtim.model.clock import Clock
from dtim.model.ids import PeerId


@dataclass(frozen=True, slots=True)
class DandelionConfig:
    """Dandelion++ parameters (defaults from the issue and the Dandelion++ paper)."""

    successors: int = 2
    epoch_seconds: float = 600.0
    fluff_probability: float = 0.1
    interval_seconds: float = 60.0
    origin_hold_intervals: float = 2.0
    origin_attempts: int = 3
    return_hold_intervals: float = 5.0
    embargo_base_intervals: float = 4.0
    embargo_mean_intervals: float = 2.0

    def __post_init__(self) -> None:
        if self.successors < 1 or not 0.0 <= self.fluff_probability <= 1.0:
            raise ValidationError(
                "dandelion", "need successors >= 1 and 0 <= fluff_probability <= 1"
            )
        holds = (self.origin_hold_intervals, self.return_hold_intervals)
        if min(self.epoch_seconds, self.interval_seconds, *holds) <= 0:
            raise ValidationError("dandelion", "epoch, interval and holds must be positive")
        if (
            self.origin_attempts < 1
            or self.embargo_base_intervals < 0
            or self.embargo_mean_intervals < 0
        ):
            raise ValidationError(
                "dandelion", "need origin_attempts >= 1 and non-negative embargo times"
            )


@dataclass(slots=True)
class _Held:
    due: datetime
    origin: bool
    inbound: PeerId | None
    attempts: int = 1
    arrivals: int = 0
    returned: bool = False


@dataclass(slots=True)
class _Epoch:
    ends: datetime
    successors: tuple[PeerId, ...] = ()
    diffuser: bool = False
    own: PeerId | None = None
    routes: dict[PeerId, PeerId] = field(default_factory=dict)


class Router:
    """One node's stem routing state.

    Args:
        config: Dandelion++ parameters.
        clock: source of the current time.
        rng: randomness (a seeded ``random.Random`` in tests and simulations).
    """

    def __init__(self, config: DandelionConfig, clock: Clock, rng: random.Random) -> None:
        self._config = config
        self._clock = clock
        self._rng = rng
        self._epoch = _Epoch(ends=clock.now())
        self._peers: tuple[PeerId, ...] = ()
        self._held: dict[ItemId, _Held] = {}

    @property
    def successors(self) -> tuple[PeerId, ...]:
        """This epoch's stem successors."""
        return self._epoch.successors

    @property
    def diffuser(self) -> bool:
        """True when this node fluffs every stem it receives this epoch."""
        return self._epoch.diffuser

    def set_peers(self, peers: Sequence[PeerId]) -> None:
        """Approved peers to route over; a changed list starts a new epoch now."""
        ordered = tuple(sorted(set(peers)))
        if ordered != self._peers:
            self._peers = ordered
            self._new_epoch()

    def _new_epoch(self) -> None:
        config = self._config
        count = min(config.successors, len(self._peers))
        chosen = tuple(self._rng.sample(self._peers, count))
        self._epoch = _Epoch(
            ends=self._clock.now() + timedelta(seconds=config.epoch_seconds),
            successors=chosen,
            diffuser=self._rng.random() < config.fluff_probability,
            own=chosen[0] if chosen else None,
        )

    def _current(self) -> _Epoch:
        if self._clock.now() >= self._epoch.ends:
            self._new_epoch()
        return self._epoch

    def originate(self, item: ItemId) -> PeerId | None:
        """Route a new local report: the successor to stem it to (None: no peers yet).

        The report stays out of the reconciliation set until :meth:`due`
        releases it or it comes back through gossip.
        """
        epoch = self._current()
        hold = timedelta(seconds=self._config.interval_seconds * self._config.origin_hold_intervals)
        self._held[item] = _Held(self._clock.now() + hold, origin=True, inbound=None)
        return epoch.own

    def relay(self, item: ItemId, inbound: PeerId) -> PeerId | None:
        """Route a report stemmed to us by ``inbound``: the next hop, or None to fluff it now."""
        epoch = self._current()
        held = self._held.get(item)
        if held is not None and held.origin:
            # Our own report came round the stem: send it on to our own successor
            # (who has seen it from us already), never fluff it here, and never
            # hand it to a second successor that would then see it come from us.
            return epoch.own
        if held is not None:
            if held.inbound != inbound or held.arrivals >= self._config.origin_attempts:
                del self._held[item]  # a loop: end the stem here
                return None
            held.arrivals += 1
        if epoch.diffuser or not epoch.successors:
            self._held.pop(item, None)
            return None
        route = self._route(epoch, inbound)
        if held is None:
            due = self._clock.now() + self._embargo()
            self._held[item] = _Held(due, origin=False, inbound=inbound, arrivals=1)
        return route

    def _route(self, epoch: _Epoch, inbound: PeerId) -> PeerId:
        route = epoch.routes.get(inbound)
        if route is None:
            route = epoch.routes[inbound] = self._rng.choice(epoch.successors)
        return route

    def _embargo(self) -> timedelta:
        config = self._config
        extra = (
            self._rng.expovariate(1.0 / config.embargo_mean_intervals)
            if config.embargo_mean_intervals
            else 0.0
        )
        return timedelta(seconds=config.interval_seconds * (config.embargo_base_intervals + extra))

    def seen_in_gossip(self, item: ItemId) -> None:
        """The item arrived through ordinary gossip: it is fluffed somewhere.

        A relay stops holding it at once. The origin holds its own report
        back for ``return_hold_intervals`` more (5): nodes near the fluff point
        get a report first, and the stem's random walk often ends near its
        start, so an origin that offered its report as soon as it came back
        would be its neighbours' first source far more often than chance.
        """
        held = self._held.get(item)
        if held is None:
            return
        if not held.origin:
            del self._held[item]
        elif not held.returned:
            held.returned = True
            hold = self._config.interval_seconds * self._config.return_hold_intervals
            held.due = self._clock.now() + timedelta(seconds=hold)

    def holding(self, item: ItemId) -> bool:
        """True while the item must stay out of the reconciliation set, even if gossip had it."""
        return item in self._held

    def due(self) -> tuple[list[ItemId], list[tuple[ItemId, PeerId]]]:
        """Timers that ran out now.

        Returns:
            ``(fluff, resend)``: items to put into the reconciliation set now,
            and own items to send down the stem again, with the successor.
        """
        now = self._clock.now()
        epoch = self._current()
        fluff: list[ItemId] = []
        resend: list[tuple[ItemId, PeerId]] = []
        for item, held in list(self._held.items()):
            if held.due > now:
                continue
            if (
                held.origin
                and not held.returned
                and held.attempts < self._config.origin_attempts
                and epoch.own is not None
            ):
                held.attempts += 1
                held.due = now + timedelta(
                    seconds=self._config.interval_seconds * self._config.origin_hold_intervals
                )
                resend.append((item, epoch.own))
            else:
                del self._held[item]
                fluff.append(item)
        return fluff, resend
