"""Dashboard benchmark: time to first byte of the indicators page and of a filtered search.

A node home with N indicators (SQLite) serves its admin app with uvicorn on
127.0.0.1 (port 0) in a process of its own, as the node's admin listener does;
a logged-in client fetches each page over one keep-alive connection (a raw
socket: no client library's own time in the figure) and records the time from
sending the request to the first body byte. Before each request, on the same
database file, the bare SQL the page stands on (``SELECT * FROM indicators
[WHERE ...] ORDER BY seq DESC LIMIT 50``) is timed through sqlite3; the ratio
page / bare query is printed next to the goal (p99 < 150 ms, at most 5x). So is
``GET /healthz`` on the same server: no query and no page, the floor any request
pays; and the same query and rows served by the least a Python server can be
(``dashboard_floor.py``: asyncio, no framework, no template), which shows what
of the page's time DTIM's stack adds.

Each case runs ``--rounds`` rounds of ``--requests`` requests, the cases taking
turns, so that a noisy minute on a shared machine falls on every case. Each
round's p50 and p99 come from its own requests; the report shows the round with
the median p99 ratio, then the range of the ratios over all rounds.

    python bench/dashboard.py               # 100,000 indicators
    python bench/dashboard.py --n 1000000   # the issue's size
    python bench/dashboard.py --n 1000000 --home /tmp/dash   # fill once, reuse after

``--against DIR`` serves the same home a second time with the DTIM code of
another checkout (``git worktree add /tmp/old HEAD~3``) and times its indicators
page in the same rounds: a change's effect, measured side by side rather than
across two runs of a machine whose speed drifts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import httpx
from child_server import child_server, serve_and_announce

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.web.harness import PASSWORD, csrf_in

from dtim.api.health import health_router
from dtim.config import NodeHome, load_settings
from dtim.model import make_indicator
from dtim.service import initialise_home
from dtim.store import Store
from dtim.store.engine import WRITE_FLAG
from dtim.store.rows import indicator_row
from dtim.store.tables import indicators, sequence
from dtim.web.node import node_admin_app

NOW = datetime.now(UTC)
BATCH = 20_000
WARM_UP = 50
"""Untimed calls before each case: the first after a login or a switch of page are slower."""
SOURCES = ("ufw", "fail2ban", "nginx_access", "suricata", "zeek", "peer-mesh")
FILTERED = "q=45.&type=ipv4&min_confidence=60"
BARE_FILTERED = (
    "SELECT * FROM indicators WHERE value >= '45.' AND value < '45/' AND type = 'ipv4' "
    "AND confidence >= 60 ORDER BY seq DESC LIMIT 50"
)
BARE_PLAIN = "SELECT * FROM indicators ORDER BY seq DESC LIMIT 50"


def value_of(n: int) -> tuple[str, str]:
    """A distinct, realistic (type, value) for index ``n``."""
    kind = n % 10
    if kind < 6:
        spread = (n * 2654435761) & 0xFFFFFFFF  # Knuth's multiplicative hash: octets all over
        return (
            "ipv4",
            f"{spread % 223 + 1}.{(spread >> 8) % 256}.{(spread >> 16) % 256}.{n % 254 + 1}",
        )
    if kind < 8:
        return "domain", f"host{n}.bad{n % 997}.example"
    if kind < 9:
        return "url", f"https://phish{n % 5003}.example/login/{n}"
    return "sha256", f"{n:064x}"


def fill(store: Store, n: int) -> None:
    """Insert ``n`` indicators straight into the table (the bench measures reads, not merges)."""
    engine = store.engine
    seen: set[tuple[str, str]] = set()
    seq = 0
    with engine.connect() as conn, conn.execution_options(**{WRITE_FLAG: True}).begin():
        for start in range(0, n, BATCH):
            rows = []
            for i in range(start, min(n, start + BATCH)):
                type_, value = value_of(i)
                if (type_, value) in seen:
                    continue
                seen.add((type_, value))
                indicator = make_indicator(
                    value,
                    type_,
                    now=NOW - timedelta(seconds=(n - i) * 600_000 / n),
                    confidence=i % 101,
                    sources=[SOURCES[i % len(SOURCES)]],
                    tlp="amber" if i % 13 == 0 else "green",
                )
                seq += 1
                rows.append(indicator_row(indicator, seq))
            conn.execute(indicators.insert(), rows)
        conn.execute(sequence.update().where(sequence.c.name == "changes").values(value=seq))
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")


async def nothing_failing() -> dict[str, str]:
    """Readiness for the floor endpoint: nothing to check."""
    return {}


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timed(work: Callable[[], object]) -> float:
    """Seconds one call of ``work`` took."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def ttfb(
    conn: socket.socket, path: str, cookie: str, count: int, bare: Callable[[], object]
) -> tuple[list[float], list[float]]:
    """Seconds from sending ``GET path`` over ``conn`` to its first body byte, ``count`` times,
    and the seconds of as many calls of ``bare``, the query to compare with.

    Each request follows one call of ``bare``, so that both see the machine in the
    same state: this shared machine's speed drifts by a factor of two from one
    minute to the next, and timing the query apart moved the ratio with it. Each
    response is read to its end after the clock stops, so the keep-alive
    connection is ready for the next request; ``WARM_UP`` pairs come first. The
    client polls its socket (:func:`spin_recv`) rather than sleep in ``recv``: waking a
    sleeping client costs this 2-core VM up to a millisecond now and then, which
    belongs to neither the page nor the query.
    """
    request = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncookie: {cookie}\r\n\r\n".encode()
    samples, bare_samples = [], []
    for number in range(count + WARM_UP):
        bare_seconds = timed(bare)
        received = bytearray()
        started = time.perf_counter()
        conn.sendall(request)
        while (end := received.find(b"\r\n\r\n")) < 0 or len(received) == end + 4:
            received.extend(spin_recv(conn))
        first_body_byte = time.perf_counter()
        head = bytes(received[:end]).split(b"\r\n")
        if not head[0].startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"{path}: {head[0].decode(errors='replace')}")
        length = next(
            int(h.split(b":")[1]) for h in head if h.lower().startswith(b"content-length:")
        )
        while len(received) < end + 4 + length:
            if not (rest := conn.recv(65536)):
                raise SystemExit(f"{path}: the server closed the connection mid-response")
            received.extend(rest)
        if number >= WARM_UP:
            samples.append(first_body_byte - started)
            bare_samples.append(bare_seconds)
    return samples, bare_samples


def spin_recv(conn: socket.socket) -> bytes:
    """What ``conn`` has received, polling without sleeping until something has arrived."""
    while True:
        try:
            data = conn.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        if not data:
            raise SystemExit("the server closed the connection in the middle of a request")
        return data


def keep_alive(port: int) -> socket.socket:
    """A raw connection to 127.0.0.1:``port`` with Nagle off, for :func:`ttfb`."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


class Case(NamedTuple):
    """One line of the report: what is requested, where, and the bare query it is set against."""

    name: str
    conn: socket.socket
    path: str
    cookie: str
    bare: Callable[[], object]


class Round(NamedTuple):
    """One round's first-body-byte times and the bare query's, in seconds."""

    samples: list[float]
    bare: list[float]

    def figures(self) -> tuple[float, float, float, float]:
        """p50 and p99 of the requests and of the bare query, in milliseconds."""
        return (
            percentile(self.samples, 0.5) * 1000,
            percentile(self.samples, 0.99) * 1000,
            percentile(self.bare, 0.5) * 1000,
            percentile(self.bare, 0.99) * 1000,
        )


def report(name: str, rounds: list[Round]) -> None:
    """The median round's figures in milliseconds and its ratios, then the rounds' range."""
    figures = sorted((r.figures() for r in rounds), key=lambda f: f[1] / f[3])
    p50, p99, b50, b99 = figures[len(figures) // 2]
    missed = [
        *(["p99 over 150 ms"] if p99 >= 150 else []),
        *(["over 5x the bare query"] if p99 / b99 > 5 else []),
    ]
    verdict = "; ".join(missed) or "ok"
    ratios99 = [f[1] / f[3] for f in figures]
    ratios50 = sorted(f[0] / f[2] for f in figures)
    print(
        f"{name:<28} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
        f"   bare p50 {b50:6.2f} ms  p99 {b99:6.2f} ms"
        f"   ratio p50 {p50 / b50:5.1f}x  p99 {p99 / b99:5.1f}x   ({verdict});"
        f"  rounds: p50 {ratios50[0]:.1f}-{ratios50[-1]:.1f}x,"
        f" p99 {ratios99[0]:.1f}-{ratios99[-1]:.1f}x"
    )


def holds(home: NodeHome) -> int | None:
    """How many indicators an existing home's store holds; None without a store."""
    db_path = Path(home.database_url.removeprefix("sqlite:///"))
    if not db_path.exists():
        return None
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return int(conn.execute("SELECT count(*) FROM indicators").fetchone()[0])


def create(home: NodeHome, n: int) -> None:
    """A new node home with the bench's password and ``n`` indicators."""
    from dtim.api.auth import set_admin_password

    initialise_home(home, host="127.0.0.1")
    set_admin_password(home.keys_dir, PASSWORD)
    store = Store(home.database_url)
    asyncio.run(store.connect())
    try:
        start = time.perf_counter()
        fill(store, n)
        print(f"filled {n:,} indicators in {time.perf_counter() - start:.1f} s")
    finally:
        asyncio.run(store.close())


def main() -> None:
    """Build the store, serve the dashboard, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="indicators in the store")
    parser.add_argument("--requests", type=int, default=200, help="requests per case and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --requests per case")
    parser.add_argument(
        "--home",
        type=Path,
        help="keep the filled node home here and reuse it when it already holds --n indicators",
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="a checkout of other DTIM code: its indicators page is timed beside this one's",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.against and not (args.against / "src" / "dtim").is_dir():
        parser.error(f"--against {args.against}: no DTIM code in {args.against / 'src'}")
    with tempfile.TemporaryDirectory(prefix="dtim-bench-dashboard-") as tmp:
        root = args.home or Path(tmp) / "node"
        home = NodeHome(root=root, settings=load_settings(root, environ={}).settings)
        if holds(home) != args.n:
            shutil.rmtree(root, ignore_errors=True)
            create(home, args.n)
        db_path = home.database_url.removeprefix("sqlite:///")
        bare_conn = sqlite3.connect(db_path)

        def bare_plain() -> object:
            return bare_conn.execute(BARE_PLAIN).fetchall()

        def bare_filtered() -> object:
            return bare_conn.execute(BARE_FILTERED).fetchall()

        matches = len(bare_conn.execute(BARE_FILTERED).fetchall())
        floor_script = str(Path(__file__).with_name("dashboard_floor.py"))
        with (
            child_server([__file__, "--serve", str(root)]) as (_, port),
            contextlib.ExitStack() as others,
        ):
            cookie, rows, page_bytes = log_in(port)
            with (
                child_server([floor_script, db_path, str(page_bytes)]) as (_, floor_port),
                keep_alive(port) as conn,
                keep_alive(floor_port) as floor_conn,
            ):
                cases = [
                    Case("GET /healthz (HTTP floor)", conn, "/healthz", cookie, bare_plain),
                    Case("GET /indicators", conn, "/indicators", cookie, bare_plain),
                    Case("same page, raw asyncio", floor_conn, "/indicators", "", bare_plain),
                    Case(
                        f"GET /indicators?{FILTERED}",
                        conn,
                        f"/indicators?{FILTERED}",
                        cookie,
                        bare_filtered,
                    ),
                    Case(
                        "GET /api/admin/indicators?…",
                        conn,
                        f"/api/admin/indicators?{FILTERED}",
                        cookie,
                        bare_filtered,
                    ),
                ]
                if args.against:
                    cases.insert(2, against_case(others, args.against, root, bare_plain))
                measured: dict[str, list[Round]] = {case.name: [] for case in cases}
                for _ in range(args.rounds):  # round-robin: a noisy minute hits every case
                    for case in cases:
                        samples = ttfb(case.conn, case.path, case.cookie, args.requests, case.bare)
                        measured[case.name].append(Round(*samples))
        print(
            f"{args.rounds} rounds of {args.requests} requests per case, each round's figures"
            f" from its own requests; the median round by p99 ratio is shown, then the"
            f" range over the rounds. The filtered search returns {rows} rows"
            f" ({matches} in SQL)."
        )
        for case in cases:
            report(case.name, measured[case.name])


def against_case(
    stack: contextlib.ExitStack, checkout: Path, root: Path, bare: Callable[[], object]
) -> Case:
    """The indicators page of ``checkout``'s code, serving ``root`` in a process of its own."""
    source = checkout.resolve() / "src"
    env = {**os.environ, "PYTHONPATH": str(source)}  # ahead of this checkout's install
    _, port = stack.enter_context(child_server([__file__, "--serve", str(root)], env=env))
    cookie, _, _ = log_in(port)
    conn = stack.enter_context(keep_alive(port))
    return Case(f"GET /indicators, {checkout.name}", conn, "/indicators", cookie, bare)


def log_in(port: int) -> tuple[str, int, int]:
    """Log in to the admin app on ``port``: the session cookie, the filtered search's rows
    and the size of the unfiltered page."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        token = csrf_in(client.get("/login").text)
        logged = client.post(
            "/login", data={"password": PASSWORD, "csrf_token": token, "next": "/"}
        )
        if logged.status_code != 303:
            raise SystemExit("login failed")
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        rows = len(re.findall(r'<td class="value">', client.get("/indicators?" + FILTERED).text))
        return cookie, rows, len(client.get("/indicators").content)


def serve(root: Path) -> None:
    """Child process: serve the node's admin app on 127.0.0.1 and print the port."""
    import uvicorn

    home = NodeHome(root=root, settings=load_settings(root, environ={}).settings)
    store = Store(home.database_url)

    async def run() -> None:
        await store.connect()
        app = node_admin_app(home, store, routers=[health_router(nothing_failing)])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            log_config=None,
            lifespan="off",
            proxy_headers=False,  # as the node's admin listener
            # Each connection waits idle while the other cases take their turn.
            timeout_keep_alive=600,
        )
        server = uvicorn.Server(config)
        await serve_and_announce(server)

    asyncio.run(run())


if __name__ == "__main__":
    main()
