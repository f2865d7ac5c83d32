"""Registry benchmark: registrations/s and peer-list requests/s over HTTPS, verified vs not.

Two registry processes are started on 127.0.0.1 (uvicorn, TLS, port 0), each
with ``--n`` nodes already registered: one verifies as in production (RFC 9421
request signature and the statement's own signature), the other is the same
code with verification disabled. Both get the same load in the same run:

* registrations: ``--registrations`` new nodes registered by ``--clients``
  concurrent clients (each a signed request with a signed statement);
* peer lists: ``--clients`` concurrent clients each walking the whole list with
  ``?since=`` pages of ``--page`` entries, ``--requests`` requests in total.

Prints throughput, p50/p99 latency and the cost of verification (ratio), and
checks the goal: list p99 under 50 ms at 50 concurrent clients.

The Python client spends more CPU per list request than the registry does,
and it shares the machine's cores with it, so its latencies measure the
client as much as the server. When ``wrk`` (Debian package ``wrk``, a C load
generator) is installed, the list phase is run again with it, ``--clients``
connections cycling through the same pages, and the goal is checked on that.

    python bench/registry.py                       # 2,000 nodes (quick)
    python bench/registry.py --n 10000             # the issue's figures
    python bench/registry.py --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import multiprocessing as mp
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import uvicorn

from dtim.crypto.identity import NodeIdentity, create_identity, load_identity
from dtim.crypto.tls import ClientCertMode, issue_node_certificates, server_context
from dtim.registry.client import RegistryClient, registry_tls_context
from dtim.registry.limits import Rate
from dtim.registry.records import RegistryRecords
from dtim.registry.routes import RegistryOptions, create_registry_app
from dtim.registry.statements import Statement, StatementKind, sign_statement

HEARTBEAT = 3600.0
UNLIMITED = Rate(1e9, 1_000_000_000)
START_TIMEOUT = 30.0


def options(verify: bool, page: int) -> RegistryOptions:
    """Production behaviour, without rate limits (one address sends everything)."""
    return RegistryOptions(
        heartbeat_seconds=HEARTBEAT,
        page_size=page,
        max_page_size=max(page, 1000),
        address_rate=UNLIMITED,
        key_rate=UNLIMITED,
        verify_signatures=verify,
    )


async def prefill(url: str, n: int) -> None:
    """Register ``n`` nodes straight into the database (as a running registry would have them)."""
    now = int(time.time())
    async with RegistryRecords(url) as records:
        for start in range(0, n, 1000):
            batch = []
            for i in range(start, min(n, start + 1000)):
                identity = NodeIdentity.generate()
                statement = Statement(
                    StatementKind.ENTRY,
                    identity.public_key_b64,
                    f"https://node{i}.bench.example:3030",
                    now,
                    now + int(3 * HEARTBEAT),
                )
                batch.append(sign_statement(statement, identity))
            await records.apply_many(batch, origin="", now=now)


def serve(home: str, url: str, verify: bool, page: int, ports: mp.Queue[int]) -> None:
    """Child process: run one registry until terminated, reporting its port."""

    async def main() -> None:
        records = RegistryRecords(url)
        await records.connect()
        app = create_registry_app(
            records, load_identity(Path(home) / "keys"), options(verify, page)
        )
        certs = Path(home) / "certs"
        tls = server_context(
            certs / "node.crt", certs / "node.key", client_cert=ClientCertMode.NONE
        )
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            ssl_context_factory=lambda _c, _d: tls,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        ports.put(server.servers[0].sockets[0].getsockname()[1])
        await task

    asyncio.run(main())


@dataclass
class Registry:
    """A registry process under test."""

    name: str
    url: str
    process: mp.process.BaseProcess


def start(ctx: mp.context.SpawnContext, home: Path, db: str, verify: bool, page: int) -> Registry:
    ports: mp.Queue[int] = ctx.Queue()
    process = ctx.Process(target=serve, args=(str(home), db, verify, page, ports), daemon=True)
    process.start()
    port = ports.get(timeout=START_TIMEOUT)
    return Registry("verified" if verify else "unverified", f"https://127.0.0.1:{port}", process)


def make_home(root: Path) -> Path:
    """A registry home: identity key and TLS certificate (what `dtim init` makes)."""
    create_identity(root / "keys")
    issue_node_certificates(root / "certs", [], now=datetime.now(UTC), common_name="bench-registry")
    return root


@dataclass
class Result:
    """Throughput and latencies of one phase, and CPU time spent by server and client."""

    count: int
    seconds: float
    latencies: list[float]
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


async def bench_registrations(url: str, verify: ssl.SSLContext, clients: int, count: int) -> Result:
    identities = [NodeIdentity.generate() for _ in range(count)]
    queue: asyncio.Queue[tuple[int, NodeIdentity]] = asyncio.Queue()
    for item in enumerate(identities):
        queue.put_nowait(item)
    latencies: list[float] = []

    async def worker() -> None:
        async with RegistryClient(url, verify=verify, timeout=60) as client:
            info = await client.describe()
            while not queue.empty():
                i, identity = queue.get_nowait()
                started = time.perf_counter()
                await client.register(
                    identity, f"https://new{i}.bench.example:3030", description=info
                )
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return Result(count, time.perf_counter() - started, latencies)


class RawClient:
    """A minimal keep-alive HTTP/1.1 client over TLS: a load generator that costs little CPU.

    httpx spends several milliseconds of CPU per large response here, which would
    measure the client rather than the registry.
    """

    def __init__(self, url: str, verify: ssl.SSLContext) -> None:
        self.host, port = url.removeprefix("https://").split(":")
        self.port = int(port)
        self.verify = verify
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.verify
            )
        host = f"{self.host}:{self.port}"
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip\r\n\r\n"
        self.writer.write(request.encode("ascii"))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in lines if line)
        }
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return int(status_line.split()[1]), headers, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def bench_lists(
    url: str, verify: ssl.SSLContext, clients: int, count: int, page: int
) -> Result:
    latencies: list[float] = []
    budget = [count]

    async def worker() -> None:
        client = RawClient(url, verify)
        since = 0
        try:
            while budget[0] > 0:
                budget[0] -= 1
                started = time.perf_counter()
                status, headers, body = await client.get(
                    f"/api/v1/peers?since={since}&limit={page}"
                )
                latencies.append(time.perf_counter() - started)
                if status != 200 or not body.startswith(b"["):
                    raise RuntimeError(f"list failed: {status} {body[:200]!r}")
                since = int(headers["x-next-since"]) if "link" in headers else 0
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return Result(len(latencies), time.perf_counter() - started, latencies)


async def page_targets(url: str, verify: ssl.SSLContext, page: int) -> list[str]:
    """Every list page's request target, walked once with ``since`` cursors."""
    client = RawClient(url, verify)
    targets, since = [], 0
    try:
        while True:
            target = f"/api/v1/peers?since={since}&limit={page}"
            targets.append(target)
            status, headers, _ = await client.get(target)
            if status != 200 or "link" not in headers:
                return targets
            since = int(headers["x-next-since"])
    finally:
        await client.close()


@dataclass
class WrkResult:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, targets: list[str], clients: int, seconds: int, tmp: Path) -> WrkResult:
    """``wrk`` with ``clients`` connections cycling through ``targets``."""
    script = tmp / "pages.lua"
    paths = ", ".join(f'"{t}"' for t in targets)
    script.write_text(
        f"local paths = {{{paths}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i], {["Accept-Encoding"] = "gzip"})\nend\n'
    )
    threads = str(min(2, clients))
    out = subprocess.run(  # wrk from PATH, our own arguments
        [
            "wrk",
            "-t",
            threads,
            "-c",
            str(clients),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout

    def latency(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no {percent}% latency in wrk's output:\n{out}")
        return float(found[1]) * _UNITS[found[2]]

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = int(errors[1]) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    return WrkResult(float(rate[1]) if rate else 0.0, latency("50"), latency("99"), failed)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(registry: Registry, phase: Awaitable[Result]) -> Result:
    """Run a phase, adding the CPU time the server and this client spent on it."""
    server, client = process_cpu(registry.process.pid or 0), time.process_time()
    result = await phase
    result.server_cpu = process_cpu(registry.process.pid or 0) - server
    result.client_cpu = time.process_time() - client
    return result


def fresh_postgres(url: str, schema: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


def report(name: str, results: dict[str, Result], unit: str) -> None:
    verified, unverified = results["verified"], results["unverified"]
    ratio = verified.rate / unverified.rate
    print(f"{name:<24}{verified.rate:>12,.0f}{unverified.rate:>14,.0f}{ratio:>10.2f}  {unit}/s")
    for label, p in (("  p50 ms", 0.5), ("  p99 ms", 0.99)):
        print(f"{label:<24}{verified.percentile(p):>12.1f}{unverified.percentile(p):>14.1f}")
    for label, attr in (
        ("  server CPU ms/req", "server_cpu"),
        ("  client CPU ms/req", "client_cpu"),
    ):
        v, u = (getattr(r, attr) / r.count * 1000 for r in (verified, unverified))
        print(f"{label:<24}{v:>12.2f}{u:>14.2f}")


async def run_load(
    registries: list[Registry], verify: ssl.SSLContext, args: argparse.Namespace
) -> dict[str, dict[str, Result]]:
    results: dict[str, dict[str, Result]] = {"registrations": {}, "lists": {}}
    for registry in registries:
        # Warm up connections and page caches the same way for both.
        await bench_lists(registry.url, verify, 4, 40, args.page)
    for registry in registries:
        phase = bench_lists(registry.url, verify, args.clients, args.requests, args.page)
        results["lists"][registry.name] = await measured(registry, phase)
    for registry in registries:
        phase = bench_registrations(registry.url, verify, args.clients, args.registrations)
        results["registrations"][registry.name] = await measured(registry, phase)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=2_000, help="nodes registered before measuring (issue: 10000)"
    )
    parser.add_argument("--page", type=int, default=500, help="entries per list page")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=2_000, help="list requests per registry")
    parser.add_argument(
        "--registrations", type=int, default=1_000, help="registrations per registry"
    )
    parser.add_argument(
        "--wrk-seconds", type=int, default=15, help="seconds of wrk load per registry (0: skip)"
    )
    parser.add_argument(
        "--postgres",
        default="",
        help="PostgreSQL URL instead of SQLite (e.g. $DTIM_TEST_DATABASE_URL)",
    )
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = make_home(root / "home")
        urls = {}
        for verify in (True, False):
            name = "verified" if verify else "unverified"
            urls[verify] = (
                fresh_postgres(args.postgres, f"dtim_bench_{name}")
                if args.postgres
                else f"sqlite:///{root}/{name}.db"
            )
            asyncio.run(prefill(urls[verify], args.n))
        registries = [start(ctx, home, urls[v], v, args.page) for v in (True, False)]
        wrk: dict[str, WrkResult] = {}
        try:
            client_tls = registry_tls_context([(home / "certs" / "ca.crt").read_text()])
            results = asyncio.run(run_load(registries, client_tls, args))
            if shutil.which("wrk") and args.wrk_seconds > 0:
                for registry in registries:
                    targets = asyncio.run(page_targets(registry.url, client_tls, args.page))
                    wrk[registry.name] = run_wrk(
                        registry.url, targets, args.clients, args.wrk_seconds, root
                    )
        finally:
            for registry in registries:
                registry.process.terminate()
                registry.process.join(timeout=10)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"registry: {args.n:,} registered nodes, page size {args.page}, "
        f"{args.clients} concurrent clients, {backend}, TLS, "
        f"{os.cpu_count()} CPUs (client and servers share them)"
    )
    print(f"{'':<24}{'verified':>12}{'unverified':>14}{'ratio':>10}")
    report("registrations", results["registrations"], "registrations")
    report("peer-list requests", results["lists"], "requests")
    p99 = results["lists"]["verified"].percentile(0.99)
    if wrk:
        verified, unverified = wrk["verified"], wrk["unverified"]
        print(
            f"peer-list requests, wrk ({args.clients} connections, {args.wrk_seconds} s, C client)"
        )
        ratio = verified.rate / unverified.rate
        print(f"{'  requests/s':<24}{verified.rate:>12,.0f}{unverified.rate:>14,.0f}{ratio:>10.2f}")
        print(f"{'  p50 ms':<24}{verified.p50_ms:>12.1f}{unverified.p50_ms:>14.1f}")
        print(f"{'  p99 ms':<24}{verified.p99_ms:>12.1f}{unverified.p99_ms:>14.1f}")
        print(f"{'  errors':<24}{verified.errors:>12}{unverified.errors:>14}")
        p99 = verified.p99_ms
    else:
        print(
            "wrk is not installed (apt-get install wrk): the goal is checked on the Python client"
        )
    verdict = "met" if p99 < 50 else "NOT met"
    print(f"goal: list p99 < 50 ms at {args.clients} clients: {verdict} ({p99:.1f} ms)")


if __name__ == "__main__":
    main()
