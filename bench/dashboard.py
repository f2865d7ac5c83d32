"""Dashboard benchmark: time to first byte of the indicators page and of a filtered search.

A node home with N indicators (SQLite) serves its admin app with uvicorn on
127.0.0.1 (port 0) in a process of its own, as the node's admin listener does;
a logged-in client fetches each page ``--requests`` times over one keep-alive
connection (a raw socket: no client library's own time in the figure) and
records the time from sending the request to the first body byte. Before each
request, on the same database file, the bare SQL the page stands on (``SELECT *
FROM indicators [WHERE ...] ORDER BY seq DESC LIMIT 50``) is timed through
sqlite3; the ratio page / bare query is printed next to the goal (p99 < 150 ms,
at most 5x). So is ``GET /healthz`` on the same server: no query and no page,
the floor any request pays; and the same query and rows served by the least a
Python server can be (``dashboard_floor.py``: asyncio, no framework, no
template), which shows what of the page's time DTIM's stack adds.

    python bench/dashboard.py               # 100,000 indicators
    python bench/dashboard.py --n 1000000   # the issue's size
    python bench/dashboard.py --n 1000000 --home /tmp/dash   # fill once, reuse after
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
            received.extend(conn.recv(65536))
        if number >= WARM_UP:
            samples.append(first_body_byte - started)
            bare_samples.append(bare_seconds)
    return samples, bare_samples


def spin_recv(conn: socket.socket) -> bytes:
    """What ``conn`` has received, polling without sleeping until something has arrived."""
    while True:
        try:
            return conn.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue


def keep_alive(port: int) -> socket.socket:
    """A raw connection to 127.0.0.1:``port`` with Nagle off, for :func:`ttfb`."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def time_floor_server(
    db_path: str, page_bytes: int, count: int, bare: Callable[[], object]
) -> tuple[list[float], list[float]]:
    """:func:`ttfb` of ``dashboard_floor.py`` serving the unfiltered page's query."""
    floor = str(Path(__file__).with_name("dashboard_floor.py"))
    with child_server([floor, db_path, str(page_bytes)]) as (_, port), keep_alive(port) as conn:
        return ttfb(conn, "/indicators", "", count, bare)


def report(name: str, samples: list[float], bare: list[float]) -> None:
    """One line of figures in milliseconds, with the ratio to the bare query."""
    p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
    b50, b99 = percentile(bare, 0.5) * 1000, percentile(bare, 0.99) * 1000
    missed = [
        *(["p99 over 150 ms"] if p99 >= 150 else []),
        *(["over 5x the bare query"] if p99 / b99 > 5 else []),
    ]
    verdict = "; ".join(missed) or "ok"
    print(
        f"{name:<28} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
        f"   bare p50 {b50:6.2f} ms  p99 {b99:6.2f} ms"
        f"   ratio p50 {p50 / b50:6.1f}x  p99 {p99 / b99:6.1f}x   ({verdict})"
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
    parser.add_argument("--requests", type=int, default=200, help="requests per page")
    parser.add_argument(
        "--home",
        type=Path,
        help="keep the filled node home here and reuse it when it already holds --n indicators",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
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
        with child_server([__file__, "--serve", str(root)]) as (_, port):
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                token = csrf_in(client.get("/login").text)
                logged = client.post(
                    "/login", data={"password": PASSWORD, "csrf_token": token, "next": "/"}
                )
                if logged.status_code != 303:
                    raise SystemExit("login failed")
                cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
                rows = len(
                    re.findall(r'<td class="value">', client.get("/indicators?" + FILTERED).text)
                )
                page_bytes = len(client.get("/indicators").content)
            with keep_alive(port) as conn:
                floor = ttfb(conn, "/healthz", cookie, args.requests, bare_plain)
                page = ttfb(conn, "/indicators", cookie, args.requests, bare_plain)
                filtered = ttfb(
                    conn, "/indicators?" + FILTERED, cookie, args.requests, bare_filtered
                )
                api = ttfb(
                    conn, "/api/admin/indicators?" + FILTERED, cookie, args.requests, bare_filtered
                )
        python_floor = time_floor_server(db_path, page_bytes, args.requests, bare_plain)
        print(
            f"requests per case: {args.requests}; "
            f"filtered search returns {rows} rows ({matches} in SQL)"
        )
        report("GET /healthz (HTTP floor)", *floor)
        report("GET /indicators", *page)
        report("same page, raw asyncio", *python_floor)
        report(f"GET /indicators?{FILTERED}", *filtered)
        report("GET /api/admin/indicators?…", *api)


def serve(root: Path) -> None:
    """Child process: serve the node's admin app on 127.0.0.1 and print the port."""
    import uvicorn

    home = NodeHome(root=root, settings=load_settings(root, environ={}).settings)
    store = Store(home.database_url)

    async def run() -> None:
        await store.connect()
        app = node_admin_app(home, store, routers=[health_router(nothing_failing)])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", log_config=None, lifespan="off"
        )
        server = uvicorn.Server(config)
        await serve_and_announce(server)

    asyncio.run(run())


if __name__ == "__main__":
    main()
