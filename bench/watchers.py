"""Watcher benchmark: lines/s per source beside fail2ban-regex, memory, precision and recall.

    .venv/bin/python bench/watchers.py                 # 200,000 generated lines per source
    .venv/bin/python bench/watchers.py --lines 1000000 # the issue's size
    .venv/bin/python bench/watchers.py --store         # commit through the SQLite store too
    .venv/bin/python bench/watchers.py --rounds 3      # best of three, DTIM and peer alternating

Each source's generated log is written to a temporary file and read back
through the same path as ``dtim ingest`` (tail reader, parse, detect, commit),
in a fresh child process per measurement, as ``fail2ban-regex`` gets one.
The sink is in memory unless ``--store`` is given, in which case sightings go
through ``dtim.store.Store.record_sightings`` on SQLite (evidence not
encrypted here; the node's own store sink seals it).
``fail2ban-regex`` (Debian package ``fail2ban``) runs in the same process tree
on the same files with its stock filters: nginx-botsearch on the nginx access
log, nginx-http-auth on the nginx error log, apache-auth on the Apache error
log; when the binary is absent that column is skipped with a message. Both
tools run on the same interpreter (``--python``, this one by default; the
ratio compares code, not CPython builds), and fail2ban-regex once more on its
own (``own py``). Peak RSS is measured in a child process that tracks
1,000,000 distinct source addresses (``--ips``).

CrowdSec's hub scenarios (Debian's package, unpacked into a cache, never
installed: see ``crowdsec_peer.py``) replay a shorter log of each source they
have a collection for (``--crowdsec-lines``, 50,000 by default: the agent
reads a few hundred lines a second with the web collections), and DTIM and fail2ban-regex read that
same file, so the quality table compares the three on identical input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import crowdsec_peer  # bench/ is the script's own directory on sys.path

from dtim.model import FakeClock, Scope, Sighting, TailPosition
from dtim.store import Store
from dtim.watchers.base import MemorySink, SightingSink, WatcherContext
from dtim.watchers.ingest import ingest
from dtim.watchers.plugins import make_plugin_manager, registered_watchers
from dtim.watchers.synthetic import SOURCES, START, Labelled, generate

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "real" / "fail2ban-debian-testlogs"
F2B_FILTERS = {
    "nginx_access": "nginx-botsearch",
    "apache_error": "apache-auth",
    "nginx_error": "nginx-http-auth",
}
F2B_MAXRETRY = 5
GOAL_RATIO = 5.0
GOAL_RSS_MB = 200


@dataclass(frozen=True)
class Measured:
    """One source's figures."""

    lines: int
    lines_per_s: float
    precision: float
    recall: float
    errors: int
    attackers: int


@dataclass(frozen=True)
class Peer:
    """fail2ban-regex's CPU seconds and matched lines per address."""

    seconds: float
    ips: Counter[str]


def context() -> WatcherContext:
    return WatcherContext(clock=FakeClock(datetime(2026, 3, 5, tzinfo=UTC)), timezone=UTC)


class StoreSink:
    """Bench-only adapter: sightings and positions through the SQLite store in one transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def commit(
        self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]
    ) -> None:
        await self.store.record_sightings(sightings, (), positions)

    async def position(self, watcher: str, path: str) -> TailPosition | None:
        return await self.store.get_position(watcher, path)


async def open_sink(use_store: bool, directory: str) -> tuple[SightingSink, Store | None]:
    if not use_store:
        return MemorySink(), None
    store = Store(f"sqlite:///{directory}/bench.db")
    await store.connect()
    return StoreSink(store), store


def measure_child(source: str, path: Path, directory: str, use_store: bool) -> None:
    """Child process: ingest ``path`` and print its CPU time and the shared values found."""
    sink, store = asyncio.run(open_sink(use_store, directory))
    specs = registered_watchers(make_plugin_manager(load_entrypoints=False))
    watcher = specs[source].create(context())
    recorder = MemorySink()

    class Tee:
        async def commit(
            self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]
        ) -> None:
            await sink.commit(sightings, positions)
            await recorder.commit(sightings, positions)

        async def position(self, watcher: str, path: str) -> TailPosition | None:
            return None

    started = time.process_time()
    stats = asyncio.run(ingest(watcher, [str(path)], Tee()))
    elapsed = time.process_time() - started
    if store is not None:
        asyncio.run(store.close())
    shared = {s.indicator.value for s in recorder.sightings if s.indicator.scope is not Scope.LOCAL}
    figures = {"lines": stats.lines, "seconds": elapsed, "errors": stats.parse_errors}
    print(json.dumps({**figures, "shared": sorted(shared)}))


@dataclass(frozen=True)
class Interpreter:
    """The Python both tools are measured on, and how each finds its code there."""

    python: str
    dtim_env: dict[str, str]
    f2b_env: dict[str, str]

    @classmethod
    def choose(cls, python: str) -> Interpreter:
        dtim_env = dict(os.environ)
        if Path(python).resolve() != Path(sys.executable).resolve():
            # Another CPython 3.11 runs DTIM from this environment's packages and sources.
            site = [p for p in sys.path if p.endswith("site-packages")]
            dtim_env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *site])
        f2b_env = dict(os.environ)
        home = fail2ban_home()
        if home is not None:
            f2b_env["PYTHONPATH"] = home
        return cls(python, dtim_env, f2b_env)

    def describe(self) -> str:
        done = subprocess.run([self.python, "-VV"], capture_output=True, text=True, check=True)
        return f"{self.python} ({done.stdout.strip()})"


def fail2ban_home() -> str | None:
    """The directory holding Debian's ``fail2ban`` package, asked of its own interpreter."""
    binary = shutil.which("fail2ban-regex")
    if binary is None:
        return None
    shebang = Path(binary).read_text(errors="replace").splitlines()[0]
    own = shebang.removeprefix("#!").split()[0] if shebang.startswith("#!") else "python3"
    done = subprocess.run(
        [
            own,
            "-c",
            "import fail2ban, os; print(os.path.dirname(os.path.dirname(fail2ban.__file__)))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


def measure(
    source: str,
    path: Path,
    truth: Labelled,
    directory: str,
    use_store: bool,
    interpreter: Interpreter,
) -> Measured:
    """One source in a fresh process, as fail2ban-regex gets one: what earlier sources left
    in the bench's own heap does not weigh on it (the store file, when used, is shared)."""
    command = [interpreter.python, __file__, "--measure-child", source, "--log", str(path)]
    child = subprocess.run(
        [*command, "--dir", directory, *(["--store"] if use_store else [])],
        capture_output=True,
        text=True,
        check=True,
        env=interpreter.dtim_env,
    )
    figures = json.loads(child.stdout)
    shared = set(figures["shared"]) - truth.partial
    hits = shared & truth.attackers
    return Measured(
        lines=figures["lines"],
        lines_per_s=figures["lines"] / figures["seconds"],
        precision=len(hits) / len(shared) if shared else 1.0,
        recall=len(hits) / len(truth.attackers) if truth.attackers else 1.0,
        errors=figures["errors"],
        attackers=len(truth.attackers),
    )


def _f2b_cpu(
    command: list[str], log: Path, filter_name: str, env: dict[str, str] | None
) -> tuple[float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [*command, "--out", "ip", str(log), filter_name],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
        env=env,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), done.stdout


def fail2ban_regex(
    log: Path, filter_name: str, interpreter: Interpreter | None = None
) -> Peer | None:
    """Run fail2ban-regex, on ``interpreter`` or else its own (the script's ``#!``); its
    CPU time less its start-up (measured on a one-line file)."""
    binary = shutil.which("fail2ban-regex")
    if binary is None:
        return None
    command = [interpreter.python, binary] if interpreter else [binary]
    env = interpreter.f2b_env if interpreter else None
    empty = log.with_suffix(".one")
    empty.write_text("x\n")
    startup, _ = _f2b_cpu(command, empty, filter_name, env)
    empty.unlink()
    total, out = _f2b_cpu(command, log, filter_name, env)
    ips = Counter(line.strip() for line in out.splitlines() if line.strip())
    return Peer(max(total - startup, 1e-6), ips)


def quality(
    ips: Counter[str], truth: Labelled, at_least: int = F2B_MAXRETRY
) -> tuple[float, float]:
    """Precision and recall of the addresses seen ``at_least`` times (fail2ban: its jail's
    maxretry matched lines; CrowdSec: one alert)."""
    flagged = {ip for ip, count in ips.items() if count >= at_least} - truth.partial
    hits = flagged & truth.attackers
    return (
        len(hits) / len(flagged) if flagged else 1.0,
        len(hits) / len(truth.attackers) if truth.attackers else 1.0,
    )


def compare_with_crowdsec(
    sources: list[str], lines: int, directory: str, use_store: bool, interpreter: Interpreter
) -> None:
    """DTIM, fail2ban-regex and CrowdSec's hub on the same ``lines``-line log per source."""
    try:
        root = crowdsec_peer.unpacked()
    except (crowdsec_peer.CrowdSecError, subprocess.SubprocessError, OSError) as error:
        print(f"CrowdSec comparison skipped: {error}")
        return
    print(
        f"same {lines:,}-line logs through CrowdSec {crowdsec_peer.version(root)} (Debian's "
        "package, hub collections per source, default private-address whitelist), "
        "fail2ban-regex and DTIM:"
    )
    print(
        f"{'source':14} {'lines/s':>9} {'CS lines/s':>10} {'ratio':>7} {'P':>6} {'R':>6} "
        f"{'f2b P':>6} {'f2b R':>6} {'CS P':>6} {'CS R':>6}  attackers  CrowdSec alerts"
    )
    for source in sources:
        if source not in crowdsec_peer.LOGS:
            continue
        truth = Labelled(source)
        path = Path(directory) / f"{source}.crowdsec.log"
        with open(path, "w", encoding="utf-8") as handle:
            for line in generate(source, lines, truth=truth, start=START):
                handle.write(line + "\n")
        row = measure(source, path, truth, directory, use_store, interpreter)
        replay = crowdsec_peer.replay(source, path, root)
        cs_rate = row.lines / max(replay.seconds, 1e-6)
        cs_p, cs_r = quality(replay.ips, truth, at_least=1)
        f2b_p = f2b_r = "-"
        if source in F2B_FILTERS:
            peer = fail2ban_regex(path, F2B_FILTERS[source], interpreter)
            if peer is not None:
                p, r = quality(peer.ips, truth)
                f2b_p, f2b_r = f"{p:.3f}", f"{r:.3f}"
        fired = ", ".join(
            f"{name.split('/')[-1]} {count}" for name, count in replay.scenarios.most_common()
        )
        print(
            f"{source:14} {row.lines_per_s:>9,.0f} {cs_rate:>10,.0f} "
            f"{row.lines_per_s / cs_rate:>6.0f}x {row.precision:>6.3f} {row.recall:>6.3f} "
            f"{f2b_p:>6} {f2b_r:>6} {cs_p:>6.3f} {cs_r:>6.3f}  {row.attackers:>9}  "
            f"{fired or 'none'}"
        )
        path.unlink()


def memory_child(count: int) -> None:
    """Feed ``count`` distinct addresses, one tracked 404 each, and print the peak RSS."""
    specs = registered_watchers(make_plugin_manager(load_entrypoints=False))
    watcher = specs["nginx_access"].create(
        WatcherContext(
            clock=FakeClock(datetime(2026, 3, 5, tzinfo=UTC)), timezone=UTC, max_tracked=count + 1
        )
    )
    parser = watcher.parser_for("mem.log")
    for line in generate("nginx_access", count, distinct_ips=True, seconds_per_line=0.0001):
        observation = parser.parse(line.replace('" 200 ', '" 404 '))
        if observation is not None:
            watcher.detect(observation)
    tracked = len(watcher.trackers["http-404-flood"])  # type: ignore[attr-defined]  # AccessWatcher
    print(json.dumps({"tracked": tracked, "peak_rss_mb": own_peak_rss_mb()}))


def own_peak_rss_mb() -> float:
    """This process's peak RSS since it was started.

    ``ru_maxrss`` would do, but on Linux it carries over the high-water mark of
    the process image before ``exec``: a child started by a parent that has
    grown large would report the parent's size. ``VmHWM`` is the child's own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def real_corpus_agreement() -> list[tuple[str, int, int, int, int]]:
    """Per fail2ban test log: DTIM's per-line verdicts (thresholds 1) against failJSON."""
    pairs = {
        "nginx_access": ["nginx-botsearch"],
        "nginx_error": ["nginx-http-auth", "nginx-limit-req", "nginx-botsearch"],
        "apache_error": [
            "apache-auth",
            "apache-botsearch",
            "apache-modsecurity",
            "apache-noscript",
            "apache-overflows",
            "apache-nohome",
            "apache-shellshock",
        ],
        "fail2ban": ["recidive"],
    }
    specs = registered_watchers(make_plugin_manager(load_entrypoints=False))
    results = []
    for source, names in pairs.items():
        spec = specs[source]
        settings = {r.name: {"threshold": 1, "cooldown": 0} for r in spec.rules}
        for name in names:
            path = CORPUS / f"{name}.log"
            if not path.exists():
                continue
            watcher = spec.create(
                WatcherContext(
                    settings=settings,
                    clock=FakeClock(datetime(2026, 3, 5, tzinfo=UTC)),
                    timezone=UTC,
                )
            )
            parser = watcher.parser_for(str(path))
            tp = fp = fn = tn = 0
            truth: dict[str, object] | None = None
            for raw in path.read_text(errors="replace").splitlines():
                if raw.startswith("# failJSON:"):
                    truth = json.loads(raw.split(":", 1)[1])
                    continue
                if raw.startswith("#") or not raw.strip() or truth is None:
                    continue
                try:
                    observation = parser.parse(raw)
                    found = (
                        {s.indicator.value for s in watcher.detect(observation)}
                        if observation
                        else set()
                    )
                except Exception:  # a ParseError counts as "not flagged" here
                    found = set()
                if truth.get("match"):
                    tp, fn = (tp + 1, fn) if truth.get("host") in found else (tp, fn + 1)
                else:
                    fp, tn = (fp + 1, tn) if found else (fp, tn + 1)
                truth = None
            results.append((f"{source} on {name}.log", tp, fp, fn, tn))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--lines", type=int, default=200_000, help="lines generated per source (issue: 1000000)"
    )
    parser.add_argument(
        "--ips",
        type=int,
        default=1_000_000,
        help="distinct addresses for the memory figure (0 skips it)",
    )
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument(
        "--rounds", type=int, default=1, help="measurements per source, best kept (issue: 3)"
    )
    parser.add_argument(
        "--store", action="store_true", help="commit through the SQLite store instead of memory"
    )
    parser.add_argument(
        "--crowdsec-lines",
        type=int,
        default=50_000,
        help="lines of the logs replayed through CrowdSec, DTIM and fail2ban alike (0 skips)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="CPython 3.11 that runs both DTIM and fail2ban-regex (default: this one); "
        "fail2ban-regex also runs once more per round on its own interpreter",
    )
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--measure-child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    if args.measure_child:
        measure_child(args.measure_child, args.log, args.dir, args.store)
        return
    with tempfile.TemporaryDirectory(prefix="dtim-bench-") as tmp:
        sink_name = (
            "SQLite store shared by the sources (record_sightings, evidence unsealed)"
            if args.store
            else "in-memory sink (no store)"
        )
        print(
            f"DTIM watchers benchmark: {args.lines:,} generated lines per source, "
            f"{sink_name}, {os.cpu_count()} CPUs"
        )
        interpreter = Interpreter.choose(args.python)
        print(
            "lines/s per CPU-second (own time; children's for fail2ban-regex), "
            f"best of {args.rounds} alternating round(s)"
        )
        print(f"both tools on {interpreter.describe()}")
        if shutil.which("fail2ban-regex") is None:
            print("fail2ban-regex not found: its columns are skipped (apt-get install fail2ban)")
        else:
            print("'own py': fail2ban-regex on the interpreter its #! names, DTIM unchanged")
        print(
            f"{'source':14} {'lines/s':>10} {'f2b lines/s':>12} {'ratio':>6} {'own py':>9} "
            f"{'ratio':>6} {'P':>6} {'R':>6} {'f2b P':>6} {'f2b R':>6}  attackers"
        )
        for source in args.sources.split(","):
            truth = Labelled(source)
            path = Path(tmp) / f"{source}.log"
            with open(path, "w", encoding="utf-8") as handle:
                for line in generate(source, args.lines, truth=truth, start=START):
                    handle.write(line + "\n")
            # Rounds alternate DTIM and fail2ban-regex; the best of each is kept (as timeit
            # does), so a slow spell of a shared machine does not land on one side only.
            rows: list[Measured] = []
            peers: list[Peer] = []
            own: list[Peer] = []
            for _ in range(args.rounds):
                rows.append(measure(source, path, truth, tmp, args.store, interpreter))
                if source in F2B_FILTERS:
                    peers += filter(None, [fail2ban_regex(path, F2B_FILTERS[source], interpreter)])
                    own += filter(None, [fail2ban_regex(path, F2B_FILTERS[source])])
            row = max(rows, key=lambda measured: measured.lines_per_s)
            f2b_rate = ratio = own_rate = own_ratio = f2b_p = f2b_r = "-"
            if peers and own:
                peer = min(peers, key=lambda measured: measured.seconds)
                rate = row.lines / peer.seconds
                f2b_rate, ratio = f"{rate:,.0f}", f"{row.lines_per_s / rate:.1f}x"
                fastest = row.lines / min(measured.seconds for measured in own)
                own_rate, own_ratio = f"{fastest:,.0f}", f"{row.lines_per_s / fastest:.1f}x"
                p, r = quality(peer.ips, truth)
                f2b_p, f2b_r = f"{p:.3f}", f"{r:.3f}"
            print(
                f"{source:14} {row.lines_per_s:>10,.0f} {f2b_rate:>12} {ratio:>6} {own_rate:>9} "
                f"{own_ratio:>6} {row.precision:>6.3f} {row.recall:>6.3f} {f2b_p:>6} {f2b_r:>6}  "
                f"{row.attackers}  ({row.errors} parse errors)"
            )
            path.unlink()
        if args.crowdsec_lines:
            compare_with_crowdsec(
                args.sources.split(","), args.crowdsec_lines, tmp, args.store, interpreter
            )
    print(
        f"goal: at least {GOAL_RATIO:.0f}x fail2ban-regex lines/s on the same file and the same "
        "interpreter; sshd: not comparable (DTIM reads fail2ban.log, not sshd's log)"
    )
    print(f"fail2ban P/R: stock filter, then the default jail maxretry={F2B_MAXRETRY} per address")
    if args.ips:
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(args.ips)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(child.stdout)
        verdict = "meets" if figures["peak_rss_mb"] < GOAL_RSS_MB else "MISSES"
        print(
            f"memory: {figures['tracked']:,} distinct addresses tracked, peak RSS "
            f"{figures['peak_rss_mb']:.0f} MB ({verdict} the < {GOAL_RSS_MB} MB goal)"
        )
    print(
        "real corpus (fail2ban test logs, thresholds 1, failJSON as truth): "
        "TP FP FN TN  precision recall"
    )
    for name, tp, fp, fn, tn in real_corpus_agreement():
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"  {name:40} {tp:3} {fp:3} {fn:3} {tn:3}  {precision:.3f} {recall:.3f}")


if __name__ == "__main__":
    main()
