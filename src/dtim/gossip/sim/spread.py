"""How fast one new report reaches every node, and who can tell where it came from.

One run: a random origin creates a real :class:`~dtim.gossip.report.Report`;
with Dandelion++ it walks the stem through real :class:`~dtim.gossip.dandelion.Router`
objects (hops take no virtual time: a direct push is milliseconds against a
gossip interval of a minute), and is fluffed where a router says so. Then,
every round, each node picks ``fanout`` random neighbours and runs a
reconciliation session with each (sessions from :class:`SessionBook`: real
or replayed real ones). Rounds are synchronous: a session works on the sets
as they were when the round began. Each delivered report goes through the
real :class:`~dtim.gossip.merge.MergeState`. Dandelion timers (the origin's
hold, relays' embargoes) run on the same virtual clock.

For origin hiding, every node remembers who handed it the report first
(by stem or by gossip). A curious neighbour of the origin guesses that
sender; colluding nodes guess the sender seen by whichever of them got the
report first. The naive baseline fluffs at the origin at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dtim.gossip.corroboration import reporter_token
from dtim.gossip.dandelion import DandelionConfig, Router
from dtim.gossip.merge import MergeState
from dtim.gossip.ranges import Key
from dtim.gossip.reconcile import Params
from dtim.gossip.report import ItemId, Report, Tombstone, item_key
from dtim.gossip.sim import seeded
from dtim.gossip.sim.graph import Graph
from dtim.gossip.sim.sessions import SessionBook, SessionStats, delivered, random_keys
from dtim.model import FakeClock, PeerId, indicator_id
from dtim.model.tlp import Tlp

START = 1_767_225_600
NOBODY = frozenset[Key]()


def _no_tombstones(tombstone: Tombstone) -> bool:
    del tombstone
    return False


@dataclass(frozen=True, slots=True)
class SpreadConfig:
    """One convergence experiment."""

    nodes: int = 1000
    fanout: int = 3
    degree: int | None = None
    rounds: int = 40
    loss: float = 0.0
    seed: int = 1
    background: int = 200
    dandelion: bool = True
    samples: int = 8
    interval_seconds: float = 60.0
    colluding: tuple[float, ...] = (0.05, 0.10, 0.20)
    collusion_draws: int = 200
    params: Params | None = None
    dandelion_config: DandelionConfig | None = None


@dataclass(frozen=True, slots=True)
class SpreadResult:
    """What one run measured.

    Attributes:
        coverage: fraction of nodes holding the report after each round (index 0: after the stem).
        stem_hops: nodes the stem passed through before it was fluffed.
        neighbour_guess: share of the origin's neighbours whose first sender was the origin.
        colluding_guess: for each colluding fraction, share of draws that named the origin.
        sessions: session counts and bytes.
    """

    coverage: tuple[float, ...]
    stem_hops: int
    neighbour_guess: float
    colluding_guess: dict[float, float]
    sessions: SessionStats = field(default_factory=SessionStats)

    def rounds_to(self, fraction: float) -> int | None:
        """First round after which at least ``fraction`` of the nodes held the report."""
        for index, covered in enumerate(self.coverage):
            if covered >= fraction - 1e-12:
                return index
        return None


class _Run:
    def __init__(self, config: SpreadConfig) -> None:
        self.config = config
        self.rng = seeded(config.seed)
        self.graph = Graph(config.nodes, config.degree, self.rng)
        self.book = SessionBook(
            random_keys(config.background, self.rng),
            seeded(self.rng.random()),
            config.samples,
            config.params,
        )
        self.clock = FakeClock()
        self.clock.set(self.clock.now().replace(year=2026, month=1, day=1))
        self.origin = self.rng.randrange(config.nodes)
        value = f"198.18.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        target = indicator_id("ipv4", value)
        self.report = Report(
            indicator=target,
            type="ipv4",
            value=value,
            tlp=Tlp.GREEN,
            recipients=(),
            bucket=START,
            confidence=80,
            tags=(),
            reporter=reporter_token(self.rng.randbytes(32), target),
            expires=START + 30 * 86400,
        )
        self.key = item_key(self.report)
        self.item = ItemId(self.key[1])
        self.fluffed: list[frozenset[Key]] = [NOBODY] * config.nodes
        self.has = bytearray(config.nodes)
        self.first: dict[int, tuple[int, int]] = {}
        self.merges: dict[int, MergeState] = {}
        self.routers: dict[int, Router] = {}
        default = DandelionConfig(interval_seconds=config.interval_seconds)
        self.dandelion = config.dandelion_config or default
        self.stem_hops = 0

    def router(self, node: int) -> Router:
        router = self.routers.get(node)
        if router is None:
            router = Router(self.dandelion, self.clock, seeded(self.rng.random()))
            router.set_peers([PeerId(str(n)) for n in self.graph.neighbours(node)])
            self.routers[node] = router
        return router

    def receive(self, node: int, sender: int) -> None:
        state = self.merges.get(node)
        if state is None:
            state = self.merges[node] = MergeState(_no_tombstones)
        if state.add(self.report, self.item):
            self.has[node] = 1
            self.first[node] = (len(self.first), sender)

    def fluff(self, node: int) -> None:
        self.fluffed[node] = frozenset((self.key,))

    def stem(self, sender: int, target: int | None) -> None:
        while target is not None:
            if self.config.loss and self.rng.random() < self.config.loss:
                return  # lost on the way: timers at the sender's end take over
            self.receive(target, sender)
            self.stem_hops += 1
            following = self.router(target).relay(self.item, PeerId(str(sender)))
            if following is None:
                self.fluff(target)
                return
            sender, target = target, int(following)

    def gossip_round(self) -> None:
        config = self.config
        snapshot = list(self.fluffed)
        pairs = [
            (i, j) for i in range(config.nodes) for j in self.graph.pick(i, config.fanout, self.rng)
        ]
        self.rng.shuffle(pairs)
        for left, right in pairs:
            transcript = self.book.session(snapshot[left], snapshot[right])
            if snapshot[left] == snapshot[right]:
                continue
            to_right, to_left, _ = delivered(transcript, config.loss, self.rng)
            if to_right:
                self.deliver(right, left)
            if to_left:
                self.deliver(left, right)

    def deliver(self, node: int, sender: int) -> None:
        self.receive(node, sender)
        router = self.routers.get(node)
        if router is not None:
            router.seen_in_gossip(self.item)
            if router.holding(self.item):
                return  # the origin keeps its own report back a little longer
        self.fluff(node)

    def timers(self) -> None:
        for node, router in list(self.routers.items()):
            fluff, resend = router.due()
            if fluff:
                self.fluff(node)
            for _, successor in resend:
                self.stem(node, int(successor))

    def run(self) -> SpreadResult:
        config = self.config
        self.receive(self.origin, self.origin)
        if config.dandelion:
            successor = self.router(self.origin).originate(self.item)
            self.stem(self.origin, None if successor is None else int(successor))
        else:
            self.fluff(self.origin)
        coverage = [sum(self.has) / config.nodes]
        for _ in range(config.rounds):
            if coverage[-1] >= 1.0:
                break
            self.clock.advance(config.interval_seconds)
            self.timers()
            self.gossip_round()
            coverage.append(sum(self.has) / config.nodes)
        return SpreadResult(
            tuple(coverage),
            self.stem_hops,
            self._neighbour_guess(),
            self._colluding_guess(),
            self.book.stats,
        )

    def _neighbour_guess(self) -> float:
        spies = [n for n in self.graph.neighbours(self.origin) if n in self.first]
        if not spies:
            return 0.0
        return sum(self.first[n][1] == self.origin for n in spies) / len(spies)

    def _colluding_guess(self) -> dict[float, float]:
        others = [n for n in range(self.config.nodes) if n != self.origin]
        rates: dict[float, float] = {}
        for fraction in self.config.colluding:
            size = max(1, round(fraction * self.config.nodes))
            right = 0
            for _ in range(self.config.collusion_draws):
                spies = [n for n in self.rng.sample(others, size) if n in self.first]
                if spies:
                    earliest = min(spies, key=lambda n: self.first[n][0])
                    right += self.first[earliest][1] == self.origin
            rates[fraction] = right / self.config.collusion_draws
        return rates


def run_spread(config: SpreadConfig) -> SpreadResult:
    """Run one convergence experiment."""
    return _Run(config).run()
