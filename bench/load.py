"""Load benchmark: one real node under gossip, TAXII and log ingestion at once.

Starts one node with ``dtim node run`` (peer API over mutual TLS with signed
requests, gossip rounds, its ``[watchers]`` tailing three log files; store
on SQLite, or PostgreSQL with ``--database-url``; its TAXII 2.1 server at
``/taxii2`` on its admin listener), and an observer process on the same store
that reports the node's counters (``bench/load_taxii.py``; with ``--taxii-on
process`` it serves TAXII too, as a second API process of a scaled-out node
would, and the node's own ``/taxii2`` is left idle). Then, all at once for
``--duration`` seconds:

* 20 simulated approved peers (``bench/load_peers.py``: real identities,
  certificates, stores and gossip runtimes, each serving its own peer API)
  run real gossip sessions with the node, each reporting 2 indicators/s of
  its own for the first 40 % of the run and re-sighting them afterwards;
* 4 TAXII consumers page through every collection the node lists to them
  (``limit=1000``, following ``next``), again and again;
* a writer appends 5,000 lines/s of ufw, nginx and fail2ban logs (from
  ``dtim.demo.generator``, 2,000 attacking addresses) to the files the
  node's watchers tail, rotating them past 64 MB.

It prints throughput per activity, p50/p99 latency per endpoint (as the
callers measured it), errors (any failed call, failed gossip session,
warning or error logged by the node: must be 0), and the node's RSS every
few seconds with the slope of the second half (flat: the growth fitted over
the second half is under 2 % of the RSS).
Exit status: 1 with errors, 2 when memory is not flat (not checked with
``--quick``), else 0.

    python bench/load.py                      # 120 s
    python bench/load.py --duration 1800      # 30 minutes
    python bench/load.py --quick              # 20 s smoke
    python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the peers are the test suite's in-process nodes

import load_peers  # noqa: E402
from load_report import PEER_PROBLEMS, Sample, not_single_peer, report  # noqa: E402
from load_taxii import TAXII_ACCOUNTS  # noqa: E402
from load_traffic import Start, Timings, consume_taxii, read_json, write_logs  # noqa: E402
from tests.mesh.cluster import MeshNode, free_port, init_homes, stop_all  # noqa: E402

from dtim.service import spawn  # noqa: E402
from dtim.taxii.accounts import AccountBook, make_account  # noqa: E402

USER = "load-consumer"
LOGS = {"ufw": "ufw_log_path", "fail2ban": "fail2ban_log_path", "nginx_access": "nginx_access_log"}
START_TIMEOUT = 120.0


@dataclass
class LoadNode(MeshNode):
    """The node under load: ``dtim node run`` with its watchers and store set."""

    extra: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The mesh node's settings plus watchers, store and timeouts."""
        env = super().environment()
        env.update(self.extra)
        return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, in seconds (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


@contextlib.contextmanager
def postgres_schema(url: str | None) -> Any:
    """A fresh schema for the run (dropped afterwards), or None for SQLite."""
    if url is None:
        yield None
        return
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"dtim_load_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in plain else "?"
    try:
        yield f"{plain}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def wait_for(condition: Any, what: str, timeout: float, alive: list[subprocess.Popen[Any]]) -> None:
    """Poll ``condition`` until true, failing when a process died or time ran out."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in alive:
            if process.poll() is not None:
                raise SystemExit(f"a process exited ({process.args!r}) before: {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)  # polling a condition with a deadline


def start_taxii(node: LoadNode, status_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start the node's TAXII server process (``bench/load_taxii.py``)."""
    with log.open("ab") as stderr:
        return subprocess.Popen(  # our own bench process
            [sys.executable, str(ROOT / "bench" / "load_taxii.py"), str(node.home),
             str(status_path), str(port)],
            env=node.environment(),
            stderr=stderr,
        )  # fmt: skip


def catch_up(status_path: Path, written: int, seconds: float) -> float:
    """Wait (at most ``seconds``) until the node has read every line written; the wait."""
    began = time.monotonic()
    while (
        _lines_read(read_json(status_path) or {}) < written and time.monotonic() - began < seconds
    ):
        time.sleep(0.5)  # polling a condition with a deadline
    return time.monotonic() - began


async def run(args: argparse.Namespace, root: Path, database_url: str | None) -> int:
    """Set everything up, run the load, print the report; returns the exit status."""
    node = LoadNode(**vars(init_homes(root, ["node"])[0]))
    logs = {name: root / "logs" / f"{name}.log" for name in LOGS}
    (root / "logs").mkdir()
    for path in logs.values():
        path.touch()
    node.extra = {
        "DTIM__NETWORK__REQUEST_TIMEOUT_SECONDS": str(args.timeout),
        "DTIM__NETWORK__GOSSIP_INTERVAL_SECONDS": str(args.gossip_interval),
        "DTIM__WATCHERS__START_AT": "beginning",
        **{f"DTIM__WATCHERS__{key.upper()}": str(logs[name]) for name, key in LOGS.items()},
    }
    if database_url:
        node.extra["DTIM__STORAGE__DATABASE_URL"] = database_url
    password = secrets.token_urlsafe(18)
    book = AccountBook(node.home / TAXII_ACCOUNTS).load()
    book.add(make_account(USER, password, level="moderate", tlps=["clear", "green"]))
    book.save()
    ca_pem = (node.home / "certs" / "ca.crt").read_text()
    from dtim.crypto.identity import load_identity

    fingerprint = load_identity(node.home / "keys").fingerprint
    timings = Timings()
    async with load_peers.peers(
        root / "peers", args.peers, interval=args.gossip_interval, request_timeout=args.timeout
    ) as peers:
        for peer in peers:
            await load_peers.approve_node(peer, node, ca_pem, fingerprint)
            load_peers.time_requests(peer, timings)
        node.peers = [{"endpoint": p.url, "public_key": p.identity.public_key_b64} for p in peers]
        node.start()
        taxii_port = free_port() if args.taxii_on == "process" else 0
        status_path = root / "taxii-status.json"
        taxii = start_taxii(node, status_path, taxii_port, root / "taxii.log")
        assert node.process is not None
        processes = [node.process, taxii]
        try:

            def ready() -> bool:
                status = read_json(status_path)
                return bool(status and status.get("ready")) and status["pinned_peers"] >= len(peers)

            began = time.monotonic()
            await asyncio.to_thread(
                wait_for, ready, "node serving, every peer approved", START_TIMEOUT, processes
            )
            print(f"node up with {len(peers)} peers approved in {time.monotonic() - began:.1f} s")
            return await measure(args, root, node, taxii, password, taxii_port, peers, timings)
        finally:
            # Figures are printed: what the test helpers log while tearing down is not load.
            logging.disable(logging.CRITICAL)
            stop_all([node])
            taxii.terminate()
            taxii.wait(timeout=10)


async def measure(
    args: argparse.Namespace,
    root: Path,
    node: LoadNode,
    taxii: subprocess.Popen[bytes],
    password: str,
    taxii_port: int,
    peers: list[Any],
    timings: Timings,
) -> int:
    """Run every activity for the duration, sampling memory; then report."""
    assert node.process is not None
    fresh = args.duration * args.fresh
    size = max(1, int(args.peer_rate * fresh) + 1)
    shared = load_peers.public_ips(size, start=10_000_000)
    context = mp.get_context("spawn")
    go = context.Event()
    starts = [Start(context.Event(), go), Start(context.Event(), go)]
    writer = context.Process(
        target=write_logs,
        args=({n: str(root / "logs" / f"{n}.log") for n in LOGS}, args.lines_per_second,
              args.duration, args.attackers, args.seed, str(root / "writer.json"),
              starts[0]),
    )  # fmt: skip
    taxii_base = f"https://127.0.0.1:{taxii_port}" if taxii_port else node.admin_url
    consumers = context.Process(
        target=consume_taxii,
        args=(taxii_base, str(node.home / "certs" / "ca.crt"), USER,
              password, args.consumers, args.duration, args.taxii_pause,
              str(root / "consumers.json"), starts[1]),
    )  # fmt: skip
    workers = [writer, consumers]
    for worker in workers:
        worker.start()
    # Python start-up and imports take seconds on a busy machine: the clock starts once both
    # workers are ready, so every activity runs for the whole duration.
    for start in starts:
        if not await asyncio.to_thread(start.ready.wait, START_TIMEOUT):
            raise SystemExit("a load worker did not start")
    go.set()
    began = time.monotonic()
    own_cpu = time.process_time()
    tasks = load_peers.start(peers)
    tasks += [
        spawn(
            load_peers.feed(p, load_peers.pool_of(i, size, shared), args.peer_rate, fresh),
            name=f"{p.name}-feed",
        )
        for i, p in enumerate(peers)
    ]
    samples: list[Sample] = []
    status_path = root / "taxii-status.json"
    while (elapsed := time.monotonic() - began) < args.duration:
        status = read_json(status_path) or {}
        samples.append(
            Sample(
                elapsed,
                rss_mb(node.process.pid),
                rss_mb(taxii.pid),
                cpu_seconds(node.process.pid),
                os.getloadavg()[0],
                status.get("indicators", 0),
                _lines_read(status),
            )
        )
        for process in (node.process, taxii):
            if process.poll() is not None:
                raise SystemExit(f"{process.args!r} exited during the run; see {root}")
        await asyncio.sleep(min(args.sample_every, max(0.0, args.duration - elapsed)))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - began
    print(
        f"driver (the {len(peers)} peers) used {time.process_time() - own_cpu:.0f} CPU-s "
        f"in {elapsed:.0f} s"
    )
    await asyncio.to_thread(writer.join, 60)
    await asyncio.to_thread(consumers.join, 120)
    written = read_json(root / "writer.json") or {}
    total_written = sum(written.get("written", {}).values())
    # The node catches up on what was written (the lag is part of the report).
    waited = await asyncio.to_thread(catch_up, status_path, total_written, 60.0)
    final_status = read_json(status_path) or {}
    node_log = node.log.read_text(errors="replace") if node.log.exists() else ""
    return report(
        args,
        elapsed=elapsed,
        samples=samples,
        peer_timings=timings,
        consumers=read_json(root / "consumers.json") or {},
        written=written,
        status=final_status,
        node_log=node_log,
        peers=peers,
        catch_up=waited,
    )


def _lines_read(status: dict[str, Any]) -> int:
    watchers = status.get("watchers") or {}
    return sum(int(w.get("lines", 0)) for w in watchers.values() if isinstance(w, dict))


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, help="seconds (default 120; 1800 for 30 minutes)")
    parser.add_argument("--quick", action="store_true", help="a 20 s smoke run")
    parser.add_argument("--database-url", help="PostgreSQL URL (a fresh schema is used)")
    parser.add_argument("--peers", type=int, default=20)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--lines-per-second", type=float, default=5000.0)
    parser.add_argument("--attackers", type=int, default=2000, help="addresses in the logs")
    parser.add_argument("--peer-rate", type=float, default=2.0, help="reports/s of each peer")
    parser.add_argument(
        "--fresh", type=float, default=0.4, help="share of the run with new peer reports"
    )
    parser.add_argument("--gossip-interval", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="peer request timeout, s")
    parser.add_argument("--taxii-pause", type=float, default=0.5, help="s between passes")
    parser.add_argument(
        "--taxii-on",
        choices=("node", "process"),
        default="node",
        help="TAXII served by the node at /taxii2 (default), or by a second process on its store",
    )
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling, s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.sample_every = min(args.sample_every, 2.0)
    if args.duration is None:
        args.duration = 20.0 if args.quick else 120.0
    return args


def main(argv: list[str]) -> int:
    """Run the benchmark; the exit status says whether the load held."""
    args = parse(argv)
    shown = logging.StreamHandler()
    shown.setLevel(logging.WARNING)
    shown.addFilter(not_single_peer)
    logging.basicConfig(level=logging.INFO, handlers=[PEER_PROBLEMS, shown])
    for noisy in ("httpx", "httpcore", "alembic", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="dtim-load-"))
    try:
        with postgres_schema(args.database_url) as database_url:
            return asyncio.run(run(args, root, database_url))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.environ.pop("DTIM_HOME", None)
    sys.exit(main(sys.argv[1:]))
