"""Store benchmark: bulk upsert and lookups on SQLite (and PostgreSQL), against naive inserts.

Prints upserts/s, lookup p50/p99, database size and peak RSS, plus the same
rows inserted the naive way (one INSERT per row, sqlite3 in autocommit mode)
measured in the same run, and the ratio between the two.

    python bench/store.py                 # 1,000,000 indicators
    python bench/store.py --n 200000      # quicker
    python bench/store.py --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from dtim.model import Indicator, make_indicator
from dtim.store import Store
from dtim.store.rows import indicator_row

NOW = datetime(2026, 3, 1, tzinfo=UTC)
BATCH = 10_000


def value_of(n: int) -> str:
    """A distinct, realistic indicator value for index ``n``."""
    kind = n % 4
    if kind == 0:
        return f"{(n >> 16) % 223 + 1}.{(n >> 8) % 256}.{n % 256}.{(n // 7) % 254 + 1}"
    if kind == 1:
        return f"host{n}.bad{n % 997}.example"
    if kind == 2:
        return f"https://phish{n % 5003}.example/login/{n}"
    return f"{n:064x}"


def batches(n: int) -> Iterator[list[Indicator]]:
    """Indicators in batches, so the benchmark never holds a million objects."""
    for start in range(0, n, BATCH):
        yield [
            make_indicator(
                value_of(i),
                now=NOW + timedelta(seconds=i),
                confidence=i % 101,
                tags=["bench", f"t{i % 7}"],
                sources=["bench"],
            )
            for i in range(start, min(n, start + BATCH))
        ]


async def bench_store(url: str, n: int, lookups: int) -> dict[str, float]:
    store = Store(url)
    await store.connect()
    elapsed = 0.0
    for batch in batches(n):
        started = time.perf_counter()
        await store.upsert_indicators(batch)
        elapsed += time.perf_counter() - started
    rng = random.Random(7)
    samples = []
    for _ in range(lookups):
        i = rng.randrange(n)
        probe = make_indicator(value_of(i), now=NOW)
        started = time.perf_counter()
        found = await store.find_indicator(probe.type, probe.value)
        samples.append(time.perf_counter() - started)
        assert found is not None, probe.value
    await store.close()
    samples.sort()
    return {
        "upserts_per_s": n / elapsed,
        "lookup_p50_ms": statistics.median(samples) * 1000,
        "lookup_p99_ms": samples[int(len(samples) * 0.99) - 1] * 1000,
    }


def bench_naive(path: Path, n: int) -> float:
    """One INSERT per row, sqlite3 in autocommit mode: what a first attempt looks like."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "CREATE TABLE indicators (id TEXT PRIMARY KEY, type TEXT, value TEXT, confidence INTEGER,"
        " created REAL, modified REAL, first_seen REAL, last_seen REAL, sightings INTEGER,"
        " tags TEXT, tlp TEXT, scope TEXT, recipients TEXT, custom_fields TEXT, sources TEXT,"
        " seq INTEGER)"
    )
    rows = [indicator_row(item, i) for batch in batches(n) for i, item in enumerate(batch)]
    started = time.perf_counter()
    for row in rows:
        db.execute(
            "INSERT INTO indicators VALUES (:id, :type, :value, :confidence, :created, :modified,"
            " :first_seen, :last_seen, :sightings, :tags, :tlp, :scope, :recipients,"
            " :custom_fields, :sources, :seq)",
            row,
        )
    elapsed = time.perf_counter() - started
    db.close()
    return n / elapsed


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def fresh_postgres(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS dtim_bench CASCADE")
        conn.execute("CREATE SCHEMA dtim_bench")
    return url + ("&" if "?" in url else "?") + "options=-csearch_path%3Ddtim_bench"


def pg_size(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size("
            "quote_ident(schemaname) || '.' || quote_ident(tablename))), 0)"
            " FROM pg_tables WHERE schemaname = 'dtim_bench'"
        ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000, help="indicators to upsert")
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument(
        "--naive-n", type=int, default=20_000, help="rows for the naive baseline (it is slow)"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DTIM_TEST_DATABASE_URL", ""),
        help="PostgreSQL URL (optional)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        naive_rate = bench_naive(Path(tmp) / "naive.db", args.naive_n)
        sqlite_figures = asyncio.run(bench_store(f"sqlite:///{db_path}", args.n, args.lookups))
        sqlite_size = size_of(db_path)
    print(f"indicators: {args.n:,}  lookups: {args.lookups:,}  naive rows: {args.naive_n:,}")
    print(f"naive sqlite3 autocommit INSERT: {naive_rate:12,.0f} rows/s")
    print(
        f"DTIM store on SQLite:            {sqlite_figures['upserts_per_s']:12,.0f} upserts/s"
        f"  ratio {sqlite_figures['upserts_per_s'] / naive_rate:.1f}x (goal >= 20x)"
    )
    print(
        f"  lookup p50 {sqlite_figures['lookup_p50_ms']:.3f} ms"
        f"  p99 {sqlite_figures['lookup_p99_ms']:.3f} ms (goal p99 < 1 ms)"
    )
    print(f"  database size {sqlite_size / 2**20:.1f} MiB")
    if args.postgres:
        url = fresh_postgres(args.postgres)
        pg = asyncio.run(bench_store(url, args.n, args.lookups))
        print(
            f"DTIM store on PostgreSQL:        {pg['upserts_per_s']:12,.0f} upserts/s"
            f"  ratio {pg['upserts_per_s'] / naive_rate:.1f}x"
        )
        print(
            f"  lookup p50 {pg['lookup_p50_ms']:.3f} ms  p99 {pg['lookup_p99_ms']:.3f} ms"
            f"  size {pg_size(args.postgres) / 2**20:.1f} MiB"
        )
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS dtim_bench CASCADE")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB (goal < 300 MiB)")


if __name__ == "__main__":
    main()
