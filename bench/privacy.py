"""Benchmark: privacy filter throughput against reading the same indicators from the store.

    .venv/bin/python bench/privacy.py [--n 200000] [--networks 100000] [--level moderate]
    .venv/bin/python bench/privacy.py --n 1000000          # the issue's figure

1. Generates ``--n`` indicators (IPv4/IPv6/domains/URLs/hashes with tags,
   custom fields and mixed TLP) and writes them to a fresh SQLite store
   (``dtim.store.Store``), and to a plain ``sqlite3`` table with the same columns.
2. Times reading them back into ``Indicator`` objects: through ``Store.changed_since``
   (the gossip/export read path, pages of 10,000) and through bare ``sqlite3``
   (the fastest read Python can do: a stricter baseline).
3. Times the privacy filter sanitizing them for one peer, with the shipped
   warninglists plus ``--networks`` random extra networks, then ``to_bytes()``.
4. Times raw warninglist lookups against those networks.

Prints the rates and the ratios; the goal is filter >= 3x store read.
"""

from __future__ import annotations

import argparse
import asyncio
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
TAGS = [
    "ssh-bruteforce", "port-scan", "web-scan", "sqli", "xss", "lfi", "rce", "cve-2021-44228",
    "cve-2023-4966", "mirai", "botnet", "c2", "phishing", "malware", "ransomware", "tor-exit",
    "spam", "credential-stuffing", "wordpress", "exchange", "smb", "rdp-bruteforce", "telnet",
    "cryptominer", "emotet", "qakbot", "cobalt-strike", "dns-tunnel", "suricata:et scan",
    "fail2ban:sshd", "nginx:404-flood", "seen on fs01.corp", "user=jdoe", "from 10.1.2.3",
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
        return "ipv6", f"2a0{rng.randrange(10)}:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
    label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(5, 14)))
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
            id=ident, type=kind, value=value, confidence=rng.randrange(101), created=first,
            modified=last, first_seen=first, last_seen=last, sightings=rng.randrange(1, 500),
            tags=tuple(sorted(rng.sample(TAGS, rng.randrange(4)))), tlp=tlp, scope=Scope.PRIVATE,
            recipients=recipients, custom_fields={"family": "mirai"} if rng.random() < 0.1 else {},
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
        started = time.perf_counter()
        out: list[Indicator] = []
        seq = 0
        while page := await store.changed_since(seq, limit=PAGE):
            out.extend(item for _, item in page)
            seq = page[-1][0]
        return out, time.perf_counter() - started


def write_plain(path: Path, items: list[Indicator]) -> None:
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE indicators (id TEXT PRIMARY KEY, type TEXT, value TEXT, confidence INTEGER,"
        " created REAL, modified REAL, first_seen REAL, last_seen REAL, sightings INTEGER,"
        " tags TEXT, tlp TEXT, scope TEXT, recipients TEXT, custom_fields TEXT, sources TEXT, seq INTEGER)"
    )
    connection.executemany(
        "INSERT INTO indicators VALUES (:id, :type, :value, :confidence, :created, :modified, :first_seen,"
        " :last_seen, :sightings, :tags, :tlp, :scope, :recipients, :custom_fields, :sources, :seq)",
        (indicator_row(item, seq) for seq, item in enumerate(items, start=1)),
    )
    connection.commit()
    connection.close()


def read_plain(path: Path) -> tuple[list[Indicator], float]:
    """The least a read can cost: one query, rows straight into Indicator objects."""
    connection = sqlite3.connect(path)
    loads = orjson.loads
    started = time.perf_counter()
    out = [
        Indicator(
            id=IndicatorId(row[0]), type=row[1], value=row[2], confidence=row[3],
            created=from_epoch(row[4]), modified=from_epoch(row[5]), first_seen=from_epoch(row[6]),
            last_seen=from_epoch(row[7]), sightings=row[8], tags=tuple(loads(row[9])),
            tlp=Tlp(row[10]), scope=Scope(row[11]), recipients=tuple(loads(row[12])),
            custom_fields=loads(row[13]), sources=tuple(loads(row[14])),
        )
        for row in connection.execute(f"SELECT {COLUMNS} FROM indicators ORDER BY seq")  # noqa: S608
    ]
    elapsed = time.perf_counter() - started
    connection.close()
    return out, elapsed


def random_networks(count: int, rng: random.Random) -> tuple[str, ...]:
    nets = []
    for _ in range(count):
        if rng.random() < 0.8:
            length = rng.randrange(16, 33)
            address = rng.getrandbits(32) >> (32 - length) << (32 - length)
            nets.append(f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}/{length}")
        else:
            length = rng.randrange(32, 65)
            address = (0x2A00 << 112 | rng.getrandbits(112)) >> (128 - length) << (128 - length)
            groups = ":".join(f"{address >> shift & 0xFFFF:x}" for shift in range(112, -1, -16))
            nets.append(f"{groups}/{length}")
    return tuple(nets)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f}/s"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="indicators (the issue's figure: 1000000)")
    parser.add_argument("--networks", type=int, default=100_000, help="extra warninglist networks")
    parser.add_argument("--level", default="moderate", choices=[level.value for level in PrivacyLevel])
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    policy = PrivacyPolicy(
        level=PrivacyLevel(args.level),
        own_networks=("81.2.69.0/24",),
        own_domains=("acme.org",),
        org_names=("Acme",),
        allow_custom_fields=True,
        allowed_custom_fields=frozenset({"family"}),
    )
    started = time.perf_counter()
    extra = Warninglist("bench", "random networks", networks=random_networks(args.networks, rng))
    lists = Warninglists.for_policy(policy, [extra])
    build_seconds = time.perf_counter() - started
    privacy = PrivacyFilter(policy, warninglists=lists)
    destination = Destination.peer("peer-a", groups=("team-x",))
    generated = make_indicators(args.n, rng)

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'store.db'}"
        asyncio.run(write_store(url, generated))
        indicators, store_seconds = asyncio.run(read_store(url))
        write_plain(Path(folder) / "plain.db", generated)
        plain, plain_seconds = read_plain(Path(folder) / "plain.db")
    del generated, plain
    n = len(indicators)

    started = time.perf_counter()
    shared = list(privacy.share_many(indicators, destination))
    filter_seconds = time.perf_counter() - started
    started = time.perf_counter()
    payload = sum(len(item.to_bytes()) for item in shared)
    bytes_seconds = time.perf_counter() - started
    share = privacy.share
    started = time.perf_counter()
    for indicator in indicators:
        share(indicator, destination)
    single_seconds = time.perf_counter() - started

    probes = [rng.getrandbits(32) for _ in range(min(args.n, 1_000_000))]
    texts = [f"{p >> 24}.{p >> 16 & 255}.{p >> 8 & 255}.{p & 255}" for p in probes]
    match = lists.match_value
    started = time.perf_counter()
    hits = sum(match("ipv4", text) is not None for text in texts)
    lookup_seconds = time.perf_counter() - started

    kept = len(shared)
    both = filter_seconds + bytes_seconds
    print(f"indicators: {n:,}   level: {args.level}   destination: {destination.describe()}")
    print(f"warninglists: shipped + {args.networks:,} extra networks, built in {build_seconds:.2f}s")
    print(f"store read (dtim.store changed_since): {rate(n, store_seconds)}  ({store_seconds:.2f}s)")
    print(f"plain sqlite3 read -> Indicator:       {rate(n, plain_seconds)}  ({plain_seconds:.2f}s)")
    print(f"privacy filter (share_many):           {rate(n, filter_seconds)}  ({filter_seconds:.2f}s, {kept:,} shared)")
    print(f"privacy filter (share, one by one):    {rate(n, single_seconds)}  ({single_seconds:.2f}s)")
    print(f"privacy filter + to_bytes:             {rate(n, both)}  ({both:.2f}s, {payload:,} bytes)")
    print(f"warninglist lookups (ipv4):            {rate(len(texts), lookup_seconds)}  ({hits:,} hits)")
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
