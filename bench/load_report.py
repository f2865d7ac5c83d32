"""What ``bench/load.py`` prints: throughput, latency per endpoint, errors, memory over time."""

from __future__ import annotations

import argparse
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from load_traffic import Timings

FLAT_SHARE = 0.02
"""Memory is flat when the fitted growth over the second half stays under 2 % of the RSS."""
_PROBLEM = re.compile(
    r" (WARNING|ERROR|CRITICAL) |^Traceback|^\S+ \S+ INFO dtim\S*: .*(failed|not adopted)"
)


@dataclass(frozen=True)
class Sample:
    """One memory sample."""

    seconds: float
    node_mb: float
    taxii_mb: float
    node_cpu: float
    load: float
    indicators: int
    lines_read: int


class PeerProblems(logging.Handler):
    """Counts what the simulated peers log as a problem (failed sessions, warnings)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING or "failed" in message:
            if message.startswith(SINGLE_PEER_WARNING):
                return  # a simulated peer knows only the node, by design
            self.count += 1
            if len(self.samples) < 10:
                self.samples.append(f"{record.levelname} {record.name}: {message}"[:300])


PEER_PROBLEMS = PeerProblems()
SINGLE_PEER_WARNING = "only 1 approved peer(s)"


def not_single_peer(record: logging.LogRecord) -> bool:
    """Logging filter: drop the simulated peers' "only one approved peer" warning."""
    return not record.getMessage().startswith(SINGLE_PEER_WARNING)


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def slope_mb_per_min(samples: list[Sample]) -> float:
    """Least-squares slope of the node's RSS, MB per minute."""
    if len(samples) < 2:
        return 0.0
    xs = [s.seconds / 60 for s in samples]
    ys = [s.node_mb for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def node_problems(log: str) -> list[str]:
    """Lines of the node's log that report a problem."""
    return [line for line in log.splitlines() if _PROBLEM.search(line)]


def report(
    args: argparse.Namespace,
    *,
    elapsed: float,
    samples: list[Sample],
    peer_timings: Timings,
    consumers: dict[str, Any],
    written: dict[str, Any],
    status: dict[str, Any],
    node_log: str,
    peers: list[Any],
    catch_up: float,
) -> int:
    """Print the figures; returns the exit status (1: errors, 2: memory not flat)."""
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"\n== Load: {len(peers)} peers, {args.consumers} TAXII consumers, "
        f"{args.lines_per_second:.0f} lines/s, {elapsed:.0f} s, store on {database} =="
    )
    timings = Timings()
    timings.merge(peer_timings.to_json())
    timings.merge(consumers.get("timings", {}))
    counts = consumers.get("counts", {})
    watchers = status.get("watchers") or {}
    lines_written = sum(written.get("written", {}).values())
    lines_read = sum(int(w.get("lines", 0)) for w in watchers.values())
    sightings = sum(int(w.get("sightings", 0)) for w in watchers.values())
    parse_errors = sum(int(w.get("parse_errors", 0)) for w in watchers.values())
    received = sum(p.runtime.loop.index.stats()["received"] for p in peers)
    rounds = sum(p.runtime.loop.rounds for p in peers)
    print("\nThroughput")
    print(
        f"  gossip     {rounds / elapsed:7.1f} peer rounds/s; "
        + ", ".join(f"{n} {c / elapsed:.1f}/s" for n, c in sorted(peer_timings.calls().items()))
    )
    print(
        f"             peers hold {received} items received through the node "
        f"({received / elapsed:.0f} items/s); node store: {status.get('indicators', 0)} indicators"
    )
    print(
        f"  TAXII      {counts.get('objects', 0) / elapsed:7.0f} objects/s, "
        f"{counts.get('pages', 0) / elapsed:.1f} pages/s, {counts.get('passes', 0)} full passes"
    )
    during = samples[-1].lines_read if samples else 0
    print(
        f"  watchers   {lines_written / elapsed:7.0f} lines/s written, "
        f"{during / elapsed:.0f} lines/s read by the node during the run "
        f"(counters published every 5 s); all {lines_read} of {lines_written} read "
        f"{catch_up:.0f} s after the writer stopped; {sightings} sightings, "
        f"{written.get('rotations', 0)} rotations"
    )
    print("\nLatency per endpoint (caller's view)")
    print(f"  {'endpoint':22} {'calls':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}")
    for name in sorted(set(timings.latencies) | set(timings.errors)):
        ordered = sorted(timings.latencies.get(name, [])) or [0.0]
        print(
            f"  {name:22} {len(timings.latencies.get(name, [])):>8} "
            f"{percentile(ordered, 0.5) * 1000:>8.1f} {percentile(ordered, 0.99) * 1000:>8.1f} "
            f"{ordered[-1] * 1000:>8.1f} {timings.errors.get(name, 0):>7}"
        )
    logged = node_problems(node_log)
    errors = {
        "failed calls": sum(timings.errors.values()),
        "node log problems": len(logged),
        "TAXII server problems": int(status.get("problems", 0)),
        "peer log problems": PEER_PROBLEMS.count,
        "watcher parse errors": parse_errors,
        "lines not ingested": max(0, lines_written - lines_read),
    }
    total = sum(errors.values())
    print(f"\nErrors: {total} ({', '.join(f'{k} {v}' for k, v in errors.items())})")
    for line in [*timings.samples, *logged[:10], *status.get("problem_samples", []),
                 *PEER_PROBLEMS.samples][:20]:  # fmt: skip
        print(f"  {line}")
    print("\nMemory (RSS, MB), node CPU and machine load over time")
    print(
        f"  {'t (s)':>6} {'node MB':>8} "
        f"{'taxii MB' if args.taxii_on == 'process' else 'obs. MB':>8} {'node CPU':>8} {'load':>5} "
        f"{'indicators':>11} {'lines read':>11}"
    )
    previous = samples[0] if samples else None
    for s in samples:
        assert previous is not None
        span = s.seconds - previous.seconds
        cpu = (s.node_cpu - previous.node_cpu) / span * 100 if span > 0 else 0.0
        previous = s
        print(
            f"  {s.seconds:>6.0f} {s.node_mb:>8.1f} {s.taxii_mb:>8.1f} {cpu:>7.0f}% "
            f"{s.load:>5.1f} {s.indicators:>11} {s.lines_read:>11}"
        )
    if len(samples) > 1:
        used = samples[-1].node_cpu - samples[0].node_cpu
        span = samples[-1].seconds - samples[0].seconds
        load = sum(s.load for s in samples) / len(samples)
        print(
            f"  node CPU: {used:.0f} CPU-s in {span:.0f} s ({used / span:.0%} of one core); "
            f"machine load average {load:.1f} on {os.cpu_count()} cores"
        )
    half = [s for s in samples if s.seconds >= elapsed / 2]
    slope = slope_mb_per_min(half)
    mean = sum(s.node_mb for s in half) / len(half) if half else 0.0
    growth = slope * (elapsed / 2) / 60
    flat = abs(growth) <= FLAT_SHARE * mean
    print(
        f"  second half: node RSS slope {slope:+.2f} MB/min ({growth:+.1f} MB fitted over "
        f"{elapsed / 2:.0f} s, mean {mean:.0f} MB): {'flat' if flat else 'NOT flat'}"
    )
    if total:
        print("\nFAILED: errors during the load")
        return 1
    if not flat and not args.quick:
        print("\nFAILED: memory still growing after warm-up")
        return 2
    print("\nload held: no errors" + ("" if args.quick else ", memory flat after warm-up"))
    return 0
