"""Gossip benchmark: convergence, reconciliation bytes, origin hiding and poisoning.

Everything runs the code behind ``dtim simulate`` (``dtim.gossip.sim``) and
the real reconciliation sessions (``dtim.gossip.reconcile``). Each figure is
printed beside its goal from the issue and beside the naive alternative
measured in the same run (naive gossip for origin hiding, full-set transfer
for bytes).

    python bench/gossip.py                 # a few minutes
    python bench/gossip.py --full          # more runs, poisoning at N = 1,000 (about 20 min)
    python bench/gossip.py --n 2000 --runs 50 --sizes 10000,100000 --poison-nodes 400
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace

from dtim.gossip.protocol import MAX_FRAME
from dtim.gossip.ranges import SortedItems
from dtim.gossip.reconcile import Transcript, converse
from dtim.gossip.report import Report, encode
from dtim.gossip.sim import seeded
from dtim.gossip.sim.poison import PoisonConfig, run_poisoning
from dtim.gossip.sim.sessions import random_keys
from dtim.gossip.sim.spread import SpreadConfig, SpreadResult, run_spread
from dtim.model import indicator_id
from dtim.model.tlp import Tlp

ID = 32


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def runs_of(config: SpreadConfig, runs: int) -> list[SpreadResult]:
    return [run_spread(replace(config, seed=config.seed + i)) for i in range(runs)]


def rounds(results: Sequence[SpreadResult], fraction: float) -> list[int]:
    return [r.rounds_to(fraction) or 10**6 for r in results]


def describe(values: list[int]) -> str:
    shown = [
        "never" if v >= 10**6 else str(v)
        for v in (min(values), int(statistics.median(values)), max(values))
    ]
    return f"min {shown[0]} / median {shown[1]} / max {shown[2]}"


def convergence(args: argparse.Namespace) -> dict[str, float]:
    print("\n== Convergence (fanout 3, one new report, rounds after its creation) ==")
    worst: dict[str, float] = {}
    cases = [
        ("complete graph", SpreadConfig(nodes=args.n, seed=args.seed), args.runs, 6, 7),
        ("complete graph", SpreadConfig(nodes=args.big_n, seed=args.seed), args.big_runs, 7, None),
        ("degree 8", SpreadConfig(nodes=args.n, degree=8, seed=args.seed), args.runs, None, 7),
    ]
    for loss in (0.0, 0.1):
        for name, config, count, goal99, goal100 in cases:
            started = time.perf_counter()
            results = runs_of(replace(config, loss=loss, rounds=60), count)
            r99, r100 = rounds(results, 0.99), rounds(results, 1.0)
            factor = 2 if loss else 1
            took = time.perf_counter() - started
            print(f"{name}, N={config.nodes}, loss {loss:.0%}, {count} runs ({took:.0f} s)")
            print(f"  99% after  {describe(r99)} rounds", end="")
            if goal99 is not None:
                share = sum(v <= goal99 * factor for v in r99) / count
                print(
                    f"   goal <= {goal99 * factor}: {share:.0%} of runs, {verdict(share == 1.0)}",
                    end="",
                )
            print()
            print(f"  100% after {describe(r100)} rounds", end="")
            if goal100 is not None:
                share = sum(v <= goal100 * factor for v in r100) / count
                needed = 0.99 if config.degree else 1.0
                met = verdict(share >= needed)
                print(f"   goal <= {goal100 * factor}: {share:.0%} of runs, {met}", end="")
            print()
            worst[f"{name} N={config.nodes} loss={loss} r99"] = max(r99)
    return worst


def sample_report_size() -> int:
    value = "203.0.113.77"
    report = Report(
        indicator=indicator_id("ipv4", value),
        type="ipv4",
        value=value,
        tlp=Tlp.GREEN,
        recipients=(),
        bucket=1_767_225_600,
        confidence=80,
        tags=(),
        reporter="0" * 32,
        expires=1_769_817_600,
    )
    return len(encode(report))


def reconciliation(args: argparse.Namespace) -> None:
    print("\n== Bytes per reconciliation session (d = 100 new reports; ids are 32 bytes) ==")
    report_size = sample_report_size()
    d = 100
    budget = 2.5 * d * ID + 4096
    rng = seeded(args.seed)
    print(f"goal: <= 2.5*d*32 + 4 KiB = {budget:,.0f} B plus the d reports, <= 4 round trips;")
    print("      an idle session <= 1 KiB each way")
    print(
        f"a report is about {report_size} B: the d reports add {d * report_size:,} B in every case"
    )
    for n in args.sizes:
        started = time.perf_counter()
        shared = random_keys(n, rng)
        a, b = SortedItems(shared), SortedItems(shared)
        idle = converse(a, b)
        print(f"n = {n:,}: idle session {idle.messages[0]} B out, 0 B back, 1 round trip")
        for split in ("initiator", "responder", "both"):
            worst_bytes, worst_trips, worst_frame = 0, 0, 0
            for _ in range(args.trials):
                new = random_keys(d, rng)
                left, right = {
                    "initiator": (new, []),
                    "responder": ([], new),
                    "both": (new[:50], new[50:]),
                }[split]
                for key in left:
                    a.add(key)
                for key in right:
                    b.add(key)
                transcript: Transcript = converse(a, b, salt=rng.randbytes(16))
                if (len(transcript.to_responder), len(transcript.to_initiator)) != (
                    len(left),
                    len(right),
                ):
                    raise SystemExit(f"reconciliation missed items at n={n}")
                for key in left:
                    a.discard(key)
                for key in right:
                    b.discard(key)
                worst_bytes = max(worst_bytes, transcript.bytes)
                worst_trips = max(worst_trips, transcript.round_trips)
                worst_frame = max(worst_frame, max(transcript.messages))
            ok = worst_bytes <= budget and worst_trips <= 4 and worst_frame <= MAX_FRAME
            print(
                f"  new on {split:9}: worst of {args.trials}: {worst_bytes:6,} B, "
                f"{worst_trips} round trips, largest frame {worst_frame:,} B  -> {verdict(ok)}"
            )
        took = time.perf_counter() - started
        print(
            f"  full-set transfer instead: {(n + d) * ID:,} B of ids, "
            f"or {(n + d) * report_size:,} B of reports ({took:.0f} s)"
        )


def origin_hiding(args: argparse.Namespace) -> None:
    print(f"\n== Origin hiding (degree 8, N={args.n}, {args.privacy_runs} runs, same seeds) ==")
    config = SpreadConfig(nodes=args.n, degree=8, seed=args.seed, collusion_draws=200)
    started = time.perf_counter()
    dandelion = runs_of(config, args.privacy_runs)
    naive = runs_of(replace(config, dandelion=False), args.privacy_runs)
    mean = statistics.fmean(r.neighbour_guess for r in dandelion)
    worst = max(r.neighbour_guess for r in dandelion)
    naive_mean = statistics.fmean(r.neighbour_guess for r in naive)
    print(f"({time.perf_counter() - started:.0f} s)")
    print(
        f"curious neighbour guesses the origin: {mean:.3f} on average "
        f"(goal <= 1.5/8 = {1.5 / 8:.4f}: {verdict(mean <= 1.5 / 8)}; "
        f"<= 0.25: {verdict(mean <= 0.25)})"
    )
    above = sum(r.neighbour_guess > 0.25 for r in dandelion) / len(dandelion)
    print(f"  worst single run (steps of 1/8): {worst:.3f}; runs above 0.25: {above:.1%}")
    print(f"  naive gossip, measured in this run: {naive_mean:.3f} (the issue quotes about 0.66)")
    for fraction in config.colluding:
        rate = statistics.fmean(r.colluding_guess[fraction] for r in dandelion)
        naive_rate = statistics.fmean(r.colluding_guess[fraction] for r in naive)
        goal = fraction + 0.03
        print(
            f"colluding {fraction:.0%} of nodes guess the origin: {rate:.3f} "
            f"(goal <= {goal:.2f}: {verdict(rate <= goal)}); naive gossip {naive_rate:.3f}"
        )


def poisoning(args: argparse.Namespace) -> None:
    print(
        f"\n== Poisoning (N={args.poison_nodes}, degree 8, 10% malicious, "
        f"100 fakes per malicious peer per round, {args.poison_rounds} rounds) =="
    )
    base = PoisonConfig(nodes=args.poison_nodes, rounds=args.poison_rounds, seed=args.seed)
    for label, config in (
        ("lone attackers (one token per fake)", base),
        ("Sybil attackers (3 invented tokens per fake)", replace(base, sybil_tokens=3)),
    ):
        started = time.perf_counter()
        result = run_poisoning(config)
        fake_ok = result.fake_max_confidence < config.threshold
        real_ok = result.real_indicators_at_99 == 1.0
        print(f"{label} ({time.perf_counter() - started:.0f} s):")
        print(
            f"  fakes injected {result.fakes_injected:,}; highest confidence of any fake "
            f"at any honest node: {result.fake_max_confidence} "
            f"(goal < {config.threshold}: {verdict(fake_ok)})"
        )
        print(
            f"  real indicators (3-5 reporters each) judged: {result.real_judged}; "
            f"at >= {config.threshold} on {result.real_pairs_at_threshold:.1%} of "
            f"(indicator, honest node) pairs"
        )
        print(
            f"  share of real indicators at >= {config.threshold} on 99% of honest nodes: "
            f"{result.real_indicators_at_99:.1%} ({verdict(real_ok)})"
        )
        print(f"  quota refusals (events; re-offered later): {result.refused_by_quota:,}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="nodes for the N=1,000 experiments")
    parser.add_argument(
        "--big-n", type=int, default=10_000, help="nodes for the N=10,000 experiment"
    )
    parser.add_argument("--runs", type=int, default=100, help="runs per convergence case at --n")
    parser.add_argument("--big-runs", type=int, default=2, help="runs at --big-n")
    parser.add_argument("--privacy-runs", type=int, default=100, help="runs for origin hiding")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="set sizes for byte counts")
    parser.add_argument("--trials", type=int, default=3, help="sessions per size and split")
    parser.add_argument("--poison-nodes", type=int, default=200)
    parser.add_argument("--poison-rounds", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="the issue's sizes (takes much longer)")
    parser.add_argument(
        "--only", choices=["convergence", "bytes", "privacy", "poisoning"], action="append"
    )
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.full:
        args.runs, args.big_runs, args.privacy_runs = 200, 10, 300
        args.trials = 10
        args.poison_nodes = 1000
    started = time.perf_counter()
    sections = args.only or ["convergence", "bytes", "privacy", "poisoning"]
    if "convergence" in sections:
        convergence(args)
    if "bytes" in sections:
        reconciliation(args)
    if "privacy" in sections:
        origin_hiding(args)
    if "poisoning" in sections:
        poisoning(args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
