"""Benchmark: privacy filter throughput against reading the same indicators from the store.

    .venv/bin/python bench/privacy.py [--n 200000] [--networks 100000] [--level moderate]
    .venv/bin/python bench/privacy.py --n 1000000          # the issue's figure

1. Generates ``--n`` indicators (IPv4/IPv6/domains/URLs/hashes with tags,
   custom fields and mixed TLP) and writes them to a fresh SQLite store
   (``dtim.store.Store``), and to a plain ``sqlite3`` table with the same columns.
2. Times reading them back into ``Indicator`` objects: through ``Store.changed_since``
   (the gossip/export read path, pages of 10,000) and through bare ``sqlite3``
   (the fastest read Python can do: a stricter baseline).
3. Times the privacy filter sanitizing them for one peer (streamed, as exports
   and gossip consume it; and one call per indicator), with the shipped
   warninglists plus ``--networks`` random extra networks, then ``to_bytes()``.
4. Times raw warninglist lookups against those networks.

Prints the rates and the ratios; the goal is filter >= 3x store read. Times are
process CPU time by default (``--clock wall`` for wall-clock), so that other jobs
on a shared machine do not skew one side of the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from dtim.model import Indicator, IndicatorId, Scope, Tlp, indicator_id
from dtim.privacy import (
    Destination,
    PrivacyFilter,
    PrivacyLevel,
    PrivacyPolicy,
    Warninglist,
    Warninglists,
)
from dtim.store import Store
from dtim.store.rows import from_epoch, indicator_row

PAGE = 10_000
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]
TAGS = [
    "ssh-bruteforce",
    "port-scan",
    "web-scan",
    "sqli",
    "xss",
    "lfi",
    "rce",
    "cve-2021-44228",
    "cve-2023-4966",
    "mirai",
    "botnet",
    "c2",
    "phishing",
    "malware",
    "ransomware",
    "tor-exit",
    "spam",
    "credential-stuffing",
    "wordpress",
    "exchange",
    "smb",
    "rdp-bruteforce",
    "telnet",
    "cryptominer",
    "emotet",
    "qakbot",
    "cobalt-strike",
    "dns-tunnel",
    "suricata:et scan",
    "fail2ban:sshd",
    "nginx:404-flood",
    "seen on fs01.corp",
    "user=jdoe",
    "from 10.1.2.3",
]
TLDS = ["com", "net", "org", "xyz", "top", "info", "ru", "cn", "io", "biz"]
COLUMNS = (
    "id, type, value, confidence, created, modified, first_seen, last_seen, sightings,"
    " tags, tlp, scope, recipients, custom_fields, sources"
)


def make_value(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.6:
        return "ipv4", ".".join(str(rng.randrange(1, 255)) for _ in range(4))
    if roll < 0.7:
        return (
            "ipv6",
            f"2a0{rng.randrange(10)}:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}",
        )
    label = "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(5, 14))
    )
    if roll < 0.85:
        return "domain", f"{label}.{rng.choice(TLDS)}"
    if roll < 0.95:
        return "url", f"http://{label}.{rng.choice(TLDS)}/{label[:4]}/payload.bin"
    return "sha256", f"{rng.getrandbits(256):064x}"


def make_indicators(n: int, rng: random.Random) -> list[Indicator]:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    out: dict[str, Indicator] = {}
    while len(out) < n:
        kind, value = make_value(rng)
        ident = indicator_id(kind, value)
        first = base + timedelta(seconds=rng.randrange(2_000_000))
        last = first + timedelta(seconds=rng.randrange(200_000))
        roll = rng.random()
        tlp, recipients = (Tlp.CLEAR, ()) if roll < 0.1 else (Tlp.GREEN, ())
        if 0.1 <= roll < 0.2:
            tlp, recipients = Tlp.AMBER, ("peer-a", "team-x")
        out[ident] = Indicator(
            id=ident,
            type=kind,
            value=value,
            confidence=rng.randrange(101),
            created=first,
            modified=last,
            first_seen=first,
            last_seen=last,
            sightings=rng.randrange(1, 500),
            tags=tuple(sorted(rng.sample(TAGS, rng.randrange(4)))),
            tlp=tlp,
            scope=Scope.PRIVATE,
            recipients=recipients,
            custom_fields={"family": "mirai"} if rng.random() < 0.1 else {},
            sources=("ufw",),
        )
    return list(out.values())


async def write_store(url: str, items: list[Indicator]) -> None:
    async with Store(url) as store:
        for start in range(0, len(items), PAGE):
            await store.upsert_indicators(items[start : start + PAGE])


async def read_store(url: str) -> tuple[list[Indicator], float]:
    """The store's read path for gossip and exports: pages in change order."""
    async with Store(url) as store:
        started = clock()
        out: list[Indicator] = []
        seq = 0
        while page := await store.changed_since(seq, limit=PAGE):
            out.extend(item for _, item in page)
            seq = page[-1][0]
        return out, clock() - started


def write_plain(path: Path, items: list[Indicator]) -> None:
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE indicators (id TEXT PRIMARY KEY, type TEXT, value TEXT,"
        " confidence INTEGER, created REAL, modified REAL, first_seen REAL, last_seen REAL,"
        " sightings INTEGER, tags TEXT, tlp TEXT, scope TEXT, recipients TEXT,"
        " custom_fields TEXT, sources TEXT, seq INTEGER)"
    )
    connection.executemany(
        "INSERT INTO indicators VALUES (:id, :type, :value, :confidence, :created, :modified,"
        " :first_seen, :last_seen, :sightings, :tags, :tlp, :scope, :recipients,"
        " :custom_fields, :sources, :seq)",
        (indicator_row(item, seq) for seq, item in enumerate(items, start=1)),
    )
    connection.commit()
    connection.close()


def read_plain(path: Path) -> tuple[list[Indicator], float]:
    """The least a read can cost: one query, rows straight into Indicator objects."""
    connection = sqlite3.connect(path)
    loads = orjson.loads
    started = clock()
    out = [
        Indicator(
            id=IndicatorId(row[0]),
            type=row[1],
            value=row[2],
            confidence=row[3],
            created=from_epoch(row[4]),
            modified=from_epoch(row[5]),
            first_seen=from_epoch(row[6]),
            last_seen=from_epoch(row[7]),
            sightings=row[8],
            tags=tuple(loads(row[9])),
            tlp=Tlp(row[10]),
            scope=Scope(row[11]),
            recipients=tuple(loads(row[12])),
            custom_fields=loads(row[13]),
            sources=tuple(loads(row[14])),
        )
        for row in connection.execute(f"SELECT {COLUMNS} FROM indicators ORDER BY seq")
    ]
    elapsed = clock() - started
    connection.close()
    return out, elapsed


def random_networks(count: int, rng: random.Random) -> tuple[str, ...]:
    nets = []
    for _ in range(count):
        if rng.random() < 0.8:
            length = rng.randrange(16, 33)
            address = rng.getrandbits(32) >> (32 - length) << (32 - length)
            dotted = ".".join(str(address >> shift & 255) for shift in (24, 16, 8, 0))
            nets.append(f"{dotted}/{length}")
        else:
            length = rng.randrange(32, 65)
            address = (0x2A00 << 112 | rng.getrandbits(112)) >> (128 - length) << (128 - length)
            groups = ":".join(f"{address >> shift & 0xFFFF:x}" for shift in range(112, -1, -16))
            nets.append(f"{groups}/{length}")
    return tuple(nets)


def row(label: str, count: int, seconds: float, extra: str = "") -> None:
    note = f", {extra}" if extra else ""
    print(f"{label:<38} {count / seconds:>12,.0f}/s  ({seconds:.2f}s{note})")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=200_000, help="indicators (the issue's figure: 1000000)"
    )
    parser.add_argument("--networks", type=int, default=100_000, help="extra warninglist networks")
    parser.add_argument(
        "--level", default="moderate", choices=[level.value for level in PrivacyLevel]
    )
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="runs per phase; the best counts")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: process CPU time, robust when other jobs share the machine (default); wall",
    )
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    rng = random.Random(args.seed)

    policy = PrivacyPolicy(
        level=PrivacyLevel(args.level),
        own_networks=("81.2.69.0/24",),
        own_domains=("acme.org",),
        org_names=("Acme",),
        allow_custom_fields=True,
        allowed_custom_fields=frozenset({"family"}),
    )
    started = clock()
    extra = Warninglist("bench", "random networks", networks=random_networks(args.networks, rng))
    lists = Warninglists.for_policy(policy, [extra])
    build_seconds = clock() - started
    privacy = PrivacyFilter(policy, warninglists=lists)
    destination = Destination.peer("peer-a", groups=("team-x",))
    generated = make_indicators(args.n, rng)

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'store.db'}"
        asyncio.run(write_store(url, generated))
        write_plain(Path(folder) / "plain.db", generated)
        del generated
        best = dict.fromkeys(("store", "plain", "filter", "single", "bytes"), float("inf"))
        # Each phase runs --repeat times, interleaved, and the best time counts:
        # other load on the machine then hits both sides of the ratio alike.
        for _ in range(args.repeat):
            indicators = []
            gc.collect()
            indicators, seconds = asyncio.run(read_store(url))
            best["store"] = min(best["store"], seconds)
            gc.collect()
            plain, seconds = read_plain(Path(folder) / "plain.db")
            best["plain"] = min(best["plain"], seconds)
            del plain
            gc.collect()
            # Exports and gossip stream what the filter yields: count it, keep nothing.
            started = clock()
            kept = sum(1 for _ in privacy.share_many(indicators, destination))
            best["filter"] = min(best["filter"], clock() - started)
            gc.collect()
            started = clock()
            payload = sum(
                len(item.to_bytes()) for item in privacy.share_many(indicators, destination)
            )
            best["bytes"] = min(best["bytes"], clock() - started)
            share = privacy.share
            gc.collect()
            started = clock()
            for indicator in indicators:
                share(indicator, destination)
            best["single"] = min(best["single"], clock() - started)
    n = len(indicators)
    store_seconds, plain_seconds = best["store"], best["plain"]
    filter_seconds, single_seconds, bytes_seconds = best["filter"], best["single"], best["bytes"]

    probes = [rng.getrandbits(32) for _ in range(min(args.n, 1_000_000))]
    texts = [f"{p >> 24}.{p >> 16 & 255}.{p >> 8 & 255}.{p & 255}" for p in probes]
    match = lists.match_value
    started = clock()
    hits = sum(match("ipv4", text) is not None for text in texts)
    lookup_seconds = clock() - started

    both = bytes_seconds
    print(f"indicators: {n:,}   level: {args.level}   to: {destination.describe()}")
    print(f"best of {args.repeat} runs per phase, {args.clock} time")
    print(
        f"warninglists: shipped + {args.networks:,} extra networks, built in {build_seconds:.2f}s"
    )
    row("store read (dtim.store changed_since)", n, store_seconds)
    row("plain sqlite3 read -> Indicator", n, plain_seconds)
    row("privacy filter (share_many)", n, filter_seconds, f"{kept:,} shared")
    row("privacy filter (share, one by one)", n, single_seconds)
    row("privacy filter + to_bytes", n, both, f"{payload:,} bytes")
    row("warninglist lookups (ipv4)", len(texts), lookup_seconds, f"{hits:,} hits")
    print(
        f"ratio filter / store read: {store_seconds / filter_seconds:.2f}x (goal >= 3x); "
        f"with to_bytes {store_seconds / both:.2f}x"
    )
    print(
        f"ratio filter / plain sqlite3 read: {plain_seconds / filter_seconds:.2f}x; "
        f"with to_bytes {plain_seconds / both:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
