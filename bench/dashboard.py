"""Dashboard benchmark: time to first byte of the indicators page and of a filtered search.

A node home with N indicators (SQLite) serves its admin app with uvicorn on
127.0.0.1 (port 0); a logged-in client fetches each page ``--requests`` times and
the time to the first body byte is recorded. In the same run, on the same
database file, the bare SQL the page stands on (``SELECT * FROM indicators
[WHERE ...] ORDER BY seq DESC LIMIT 50``) is timed through sqlite3; the ratio
page / bare query is printed next to the goal (p99 < 150 ms, at most 5x). So is
``GET /healthz`` on the same server: no query and no page, the floor any request
pays in this harness (client and server share the process, as in the tests).

    python bench/dashboard.py               # 100,000 indicators
    python bench/dashboard.py --n 1000000   # the issue's size
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import running_server
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


def time_it(work: Callable[[], object], count: int) -> list[float]:
    """Seconds per call of ``work``, ``count`` times, after a short warm-up."""
    for _ in range(5):
        work()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return samples


def ttfb(client: httpx.Client, url: str) -> Callable[[], None]:
    """A call that fetches ``url`` and stops the clock at the first body byte."""

    def fetch() -> None:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
            next(response.iter_raw())

    return fetch


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


def main() -> None:
    """Build the store, serve the dashboard, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="indicators in the store")
    parser.add_argument("--requests", type=int, default=200, help="requests per page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dtim-bench-dashboard-") as tmp:
        root = Path(tmp) / "node"
        home = NodeHome(root=root, settings=load_settings(root, environ={}).settings)
        initialise_home(home, host="127.0.0.1")
        from dtim.api.auth import set_admin_password

        set_admin_password(home.keys_dir, PASSWORD)
        store = Store(home.database_url)
        asyncio.run(store.connect())
        try:
            start = time.perf_counter()
            fill(store, args.n)
            print(f"filled {args.n:,} indicators in {time.perf_counter() - start:.1f} s")
            db_path = home.database_url.removeprefix("sqlite:///")
            bare_conn = sqlite3.connect(db_path)
            bare_plain = time_it(lambda: bare_conn.execute(BARE_PLAIN).fetchall(), args.requests)
            bare_filtered = time_it(
                lambda: bare_conn.execute(BARE_FILTERED).fetchall(), args.requests
            )
            matches = len(bare_conn.execute(BARE_FILTERED).fetchall())
            with (
                running_server(
                    node_admin_app(home, store, routers=[health_router(nothing_failing)])
                ) as server,
                httpx.Client(base_url=server.base_url, timeout=30) as client,
            ):
                form = client.get("/login")
                token = csrf_in(form.text)
                logged = client.post(
                    "/login", data={"password": PASSWORD, "csrf_token": token, "next": "/"}
                )
                if logged.status_code != 303:
                    raise SystemExit("login failed")
                floor = time_it(ttfb(client, "/healthz"), args.requests)
                page = time_it(ttfb(client, "/indicators"), args.requests)
                filtered = time_it(ttfb(client, "/indicators?" + FILTERED), args.requests)
                api = time_it(ttfb(client, "/api/admin/indicators?" + FILTERED), args.requests)
                body = client.get("/indicators?" + FILTERED).text
                rows = len(re.findall(r'<td class="value">', body))
            print(
                f"requests per case: {args.requests}; "
                f"filtered search returns {rows} rows ({matches} in SQL)"
            )
            report("GET /healthz (HTTP floor)", floor, bare_plain)
            report("GET /indicators", page, bare_plain)
            report(f"GET /indicators?{FILTERED}", filtered, bare_filtered)
            report("GET /api/admin/indicators?…", api, bare_filtered)
        finally:
            asyncio.run(store.close())


if __name__ == "__main__":
    main()
