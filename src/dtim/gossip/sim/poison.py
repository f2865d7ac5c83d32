"""Poisoning: malicious approved peers inject fake indicators; do they reach the block threshold?

Honest organisations report real indicators, each seen by several of them
(each origin's report carries its own blinded token). A fraction of the
nodes are malicious: every round each injects ``fakes_per_round`` fake
indicators with confidence 100, and relays everything else faithfully (the
worst case for spreading). Every honest node merges what it receives with
the real :class:`~dtim.gossip.merge.MergeState` (corroboration caps included),
takes at most ``quota`` new reports per peer per round through a real
:class:`~dtim.gossip.corroboration.NewReportQuota`, and the simulation
watches the highest confidence any fake ever reaches at any honest node.

What is modelled rather than run: sessions transfer exactly the set
difference (what reconciliation guarantees; its bytes are measured in the
spread experiment), origins fluff at once (no Dandelion stem, which only
hides the origin), and the reports one origin injects in one round travel
together as one *batch*: they take the same path, so one representative
report per batch goes through the merge while the quota counts them all.
When a peer offers more than the quota takes, the node accepts in
:func:`~dtim.gossip.corroboration.admission_order` (best corroborated first,
then oldest), whole batches at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from dtim.aging import DecayModel
from dtim.gossip.corroboration import (
    BLOCK_THRESHOLD,
    DEFAULT_NEW_REPORTS_PER_ROUND,
    NewReportQuota,
    admission_order,
    reporter_token,
)
from dtim.gossip.merge import MergeState
from dtim.gossip.report import ItemId, Report, Tombstone, item_id
from dtim.gossip.sim import seeded
from dtim.gossip.sim.graph import Graph
from dtim.model import IndicatorId, PeerId, indicator_id
from dtim.model.tlp import Tlp

START = 1_767_225_600


def _no_tombstones(tombstone: Tombstone) -> bool:
    del tombstone
    return False


@dataclass(frozen=True, slots=True)
class PoisonConfig:
    """One poisoning experiment.

    Attributes:
        sybil_tokens: tokens a malicious peer invents per fake (1 = it does not cheat on tokens).
        settle_rounds: real indicators first reported in the last rounds are not judged.
    """

    nodes: int = 200
    degree: int | None = 8
    fanout: int = 3
    malicious: float = 0.10
    fakes_per_round: int = 100
    rounds: int = 60
    real_per_round: int = 2
    reporters: tuple[int, int] = (3, 5)
    reporting_window: int = 3
    sybil_tokens: int = 1
    quota: int = DEFAULT_NEW_REPORTS_PER_ROUND
    threshold: int = BLOCK_THRESHOLD
    settle_rounds: int = 15
    loss: float = 0.0
    seed: int = 1
    interval_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class PoisonResult:
    """What one poisoning run measured."""

    fakes_injected: int
    fake_max_confidence: int
    fake_pairs_at_threshold: int
    real_judged: int
    real_pairs_at_threshold: float
    real_indicators_at_99: float
    refused_by_quota: int
    honest_nodes: int
    malicious_nodes: int


@dataclass(slots=True)
class _Batch:
    size: int
    fake: bool
    reports: tuple[Report, ...]
    indicator: IndicatorId
    keys: tuple[ItemId, ...] = ()

    def __post_init__(self) -> None:
        self.keys = tuple(item_id(r) for r in self.reports)


@dataclass(slots=True)
class _Real:
    indicator: IndicatorId
    first_round: int
    batches: list[int] = field(default_factory=list)


class _Run:
    def __init__(self, config: PoisonConfig) -> None:
        self.config = config
        self.rng = seeded(config.seed)
        self.graph = Graph(config.nodes, config.degree, self.rng)
        count = max(1, round(config.malicious * config.nodes))
        self.malicious = set(self.rng.sample(range(config.nodes), count))
        self.honest = [n for n in range(config.nodes) if n not in self.malicious]
        self.secrets = [self.rng.randbytes(32) for _ in range(config.nodes)]
        self.batches: list[_Batch] = []
        # Each node's batches as a bit mask: set differences of thousands of
        # batches stay cheap however long the run.
        self.known: list[int] = [0] * config.nodes
        self.merges = {n: MergeState(_no_tombstones) for n in self.honest}
        self.quotas = {n: NewReportQuota(config.quota) for n in self.honest}
        self.model = DecayModel()
        self.reals: list[_Real] = []
        self.pending: list[tuple[int, int, int]] = []
        self.fake_max = 0
        self.fake_pairs = 0
        self.serial = 0

    def now(self, round_: int) -> datetime:
        return datetime.fromtimestamp(START + round_ * self.config.interval_seconds, UTC)

    def report(
        self, origin: int, round_: int, confidence: int, value: str, token_salt: int = 0
    ) -> Report:
        target = indicator_id("ipv4", value)
        secret = (
            self.secrets[origin] if not token_salt else self.secrets[origin] + bytes([token_salt])
        )
        bucket = START + int(round_ * self.config.interval_seconds) // 3600 * 3600
        return Report(
            indicator=target,
            type="ipv4",
            value=value,
            tlp=Tlp.GREEN,
            recipients=(),
            bucket=bucket,
            confidence=confidence,
            tags=(),
            reporter=reporter_token(secret, target),
            expires=bucket + 30 * 86400,
        )

    def value(self) -> str:
        self.serial += 1
        return f"45.{self.serial >> 16 & 255}.{self.serial >> 8 & 255}.{self.serial & 255}"

    def inject(self, origin: int, batch: _Batch, round_: int) -> int:
        self.batches.append(batch)
        index = len(self.batches) - 1
        self.known[origin] |= 1 << index
        if origin in self.merges:
            self.absorb(origin, batch, round_)
        return index

    def absorb(self, node: int, batch: _Batch, round_: int) -> None:
        state = self.merges[node]
        for report, key in zip(batch.reports, batch.keys, strict=True):
            state.add(report, key)
        if batch.fake:
            view = state.view(batch.indicator, self.now(round_))
            confidence = view.confidence(self.now(round_), self.model) if view else 0
            self.fake_max = max(self.fake_max, confidence)
            self.fake_pairs += confidence >= self.config.threshold

    def plan_reals(self, round_: int) -> None:
        config = self.config
        for _ in range(config.real_per_round):
            value = self.value()
            real = _Real(indicator_id("ipv4", value), round_)
            low, high = config.reporters
            for origin in self.rng.sample(self.honest, self.rng.randint(low, high)):
                when = round_ + self.rng.randrange(config.reporting_window)
                self.pending.append((when, origin, len(self.reals)))
            self.reals.append(real)
            self.real_values[real.indicator] = value

    def inject_round(self, round_: int) -> None:
        config = self.config
        for origin in sorted(self.malicious):
            value = self.value()
            reports = tuple(
                self.report(origin, round_, 100, value, salt) for salt in range(config.sybil_tokens)
            )
            size = config.fakes_per_round * config.sybil_tokens
            self.inject(origin, _Batch(size, True, reports, reports[0].indicator), round_)
        due = [p for p in self.pending if p[0] == round_]
        self.pending = [p for p in self.pending if p[0] != round_]
        for _, origin, real_index in due:
            real = self.reals[real_index]
            value = self.real_values[real.indicator]
            report = self.report(origin, round_, self.rng.randint(75, 95), value)
            real.batches.append(
                self.inject(origin, _Batch(1, False, (report,), real.indicator), round_)
            )

    def gossip(self, round_: int) -> None:
        config = self.config
        for quota in self.quotas.values():
            quota.start_round()
        snapshot = list(self.known)
        pairs = [
            (i, j) for i in range(config.nodes) for j in self.graph.pick(i, config.fanout, self.rng)
        ]
        self.rng.shuffle(pairs)
        for left, right in pairs:
            if config.loss and self.rng.random() < config.loss:
                continue
            self.deliver(right, left, snapshot[left] & ~snapshot[right], round_)
            self.deliver(left, right, snapshot[right] & ~snapshot[left], round_)

    def deliver(self, node: int, sender: int, offered: int, round_: int) -> None:
        bits = offered & ~self.known[node]
        if not bits:
            return
        if node not in self.merges:
            self.known[node] |= bits  # malicious nodes relay everything
            return
        fresh = []
        while bits:
            lowest = bits & -bits
            fresh.append(lowest.bit_length() - 1)
            bits ^= lowest
        quota = self.quotas[node]
        peer = PeerId(str(sender))
        total = sum(self.batches[i].size for i in fresh)
        if total > quota.remaining(peer):
            fresh = self.admission(node, fresh)
        room = quota.remaining(peer)
        refused = 0
        for index in fresh:
            batch = self.batches[index]
            if batch.size > room:
                refused += batch.size  # refused this round; offered again later
                continue
            room -= quota.take(peer, batch.size)
            self.known[node] |= 1 << index
            self.absorb(node, batch, round_)
        if refused:
            quota.take(peer, refused)

    def admission(self, node: int, fresh: list[int]) -> list[int]:
        state = self.merges[node]
        owner = {id(r): i for i in fresh for r in self.batches[i].reports}
        reports = [r for i in fresh for r in self.batches[i].reports]
        ordered = admission_order(reports, state.reporters)
        return list(dict.fromkeys(owner[id(r)] for r in ordered))

    def run(self) -> PoisonResult:
        config = self.config
        self.real_values: dict[IndicatorId, str] = {}
        for round_ in range(config.rounds):
            if round_ < config.rounds - config.reporting_window:
                self.plan_reals(round_)
            self.inject_round(round_)
            self.gossip(round_)
        return self.result()

    def result(self) -> PoisonResult:
        config = self.config
        moment = self.now(config.rounds)
        judged = [r for r in self.reals if r.first_round < config.rounds - config.settle_rounds]
        hits = 0
        complete = 0
        for real in judged:
            reached = 0
            for node in self.honest:
                view = self.merges[node].view(real.indicator, moment)
                reached += (
                    view is not None and view.confidence(moment, self.model) >= config.threshold
                )
            hits += reached
            complete += reached >= 0.99 * len(self.honest)
        pairs = max(1, len(judged) * len(self.honest))
        return PoisonResult(
            fakes_injected=len(self.malicious) * config.fakes_per_round * config.rounds,
            fake_max_confidence=self.fake_max,
            fake_pairs_at_threshold=self.fake_pairs,
            real_judged=len(judged),
            real_pairs_at_threshold=hits / pairs,
            real_indicators_at_99=complete / max(1, len(judged)),
            refused_by_quota=sum(sum(q.refused.values()) for q in self.quotas.values()),
            honest_nodes=len(self.honest),
            malicious_nodes=len(self.malicious),
        )


def run_poisoning(config: PoisonConfig) -> PoisonResult:
    """Run one poisoning experiment."""
    return _Run(config).run()
