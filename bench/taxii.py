"""TAXII serving and STIX export throughput, side by side with the OASIS references.

1. Serving: N indicators in a TAXII collection; 4 concurrent clients each page
   through GET .../objects/?limit=1000 following ``next`` to the end. Figures:
   objects/s (all clients together) and p99 page latency, for DTIM (uvicorn,
   in-memory feed, every object through the real privacy filter) and for
   OASIS's medallion (Flask/werkzeug, its memory backend) serving the same
   STIX objects. Each server runs in its own process.
2. Export: a STIX bundle of M indicators written by DTIM (privacy filter +
   hand-built dicts + orjson, streamed to a file) versus building the same
   objects with the ``stix2`` library and serialising them.

Usage: ``python bench/taxii.py [--n 100000] [--export-n 1000000] [--skip-medallion]``
(medallion comes from the ``bench`` extra: ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.servers

from tests.servers import loopback_socket

from dtim.model import FakeClock, Indicator, Tlp, make_indicator
from dtim.model.clock import iso

START = datetime(2026, 1, 1, tzinfo=UTC)
USER, PASSWORD = "bench", "bench-password-123"
PAGE = 1000
CLIENTS = 4


def indicators(count: int) -> list[Indicator]:
    """``count`` distinct public-looking IPv4 indicators, TLP:GREEN."""
    out = []
    for i in range(count):
        value = f"{11 + (i >> 24) % 100}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        out.append(
            make_indicator(
                value, "ipv4", now=START, confidence=80, tags=["ssh-bruteforce"], tlp=Tlp.GREEN
            )
        )
    return out


def _privacy() -> Any:
    from dtim.privacy import PrivacyFilter, PrivacyPolicy
    from dtim.taxii.wiring import PrivacySharer

    return PrivacySharer(PrivacyFilter(PrivacyPolicy()), lambda i: i.last_seen + timedelta(days=30))


def serve_dtim(count: int, sock: socket.socket, ready: Any) -> None:
    """Child process: DTIM's TAXII app under uvicorn."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from dtim.taxii.accounts import AccountBook, make_account
    from dtim.taxii.backend import MemoryFeed
    from dtim.taxii.server import TaxiiServer, TaxiiSettings

    feed = MemoryFeed(FakeClock(START))
    feed.add(indicators(count))
    book = AccountBook(Path(tempfile.mkdtemp()) / "users.json")
    book.add(make_account(USER, PASSWORD, level="moderate", tlps=["green"]))
    server = TaxiiServer(feed, _privacy(), book, TaxiiSettings(max_page_size=PAGE))
    app = Starlette(routes=[Mount("/taxii2", app=server.app())])
    ready.set()
    uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off", access_log=False)).run(
        sockets=[sock]
    )


def stix_objects(count: int) -> list[dict[str, object]]:
    """The STIX objects DTIM serves for ``count`` indicators (moderate level)."""
    from dtim.stix.mapping import shared_objects

    sharer = _privacy()
    from dtim.taxii.accounts import Account

    account = Account(name=USER, level="moderate", tlps=(Tlp.CLEAR, Tlp.GREEN))
    out: list[dict[str, object]] = []
    stamp = iso(START)
    for indicator in indicators(count):
        shared = sharer.share(indicator, account)
        if shared is not None:
            out.extend(shared_objects(shared, stamp=stamp))
    return out


def serve_medallion(count: int, sock: socket.socket, ready: Any) -> None:
    """Child process: medallion's Flask app with its memory backend, on werkzeug (threaded)."""
    import logging

    import medallion
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    objects = stix_objects(count)
    start = START
    manifest = []
    for index, obj in enumerate(objects):
        added = start + timedelta(microseconds=index)
        manifest.append(
            {
                "id": obj["id"],
                "date_added": added.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "version": obj["modified"],
                "media_type": "application/stix+json;version=2.1",
            }
        )
    collection_id = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
    data = {
        "/discovery": {"title": "bench", "default": "/api1/", "api_roots": ["/api1/"]},
        "api1": {
            "information": {
                "title": "bench",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 10_000_000,
            },
            "status": [],
            "collections": [
                {
                    "id": collection_id,
                    "title": "bench",
                    "can_read": True,
                    "can_write": False,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objects,
                    "manifest": manifest,
                }
            ],
        },
    }
    path = Path(tempfile.mkdtemp()) / "data.json"
    path.write_bytes(orjson.dumps(data))
    app = medallion.application_instance
    medallion.set_config(app, "users", {"users": {USER: PASSWORD}})
    medallion.set_config(app, "taxii", {"taxii": {"max_page_size": PAGE}})
    medallion.set_config(
        app,
        "backend",
        {
            "backend": {
                "module": "medallion.backends.memory_backend",
                "module_class": "MemoryBackend",
                "filename": str(path),
                "session_timeout": 3600,
            }
        },
    )
    medallion.register_blueprints(app)
    server = make_server("127.0.0.1", 0, app, threaded=True, fd=sock.fileno())
    ready.set()
    server.serve_forever()


def client_run(url: str, latencies: list[float], counts: list[int], timeout: float) -> None:
    """Page through a collection to the end, recording each page's latency."""
    headers = {"Accept": "application/taxii+json;version=2.1"}
    with httpx.Client(auth=(USER, PASSWORD), headers=headers, timeout=timeout) as http:
        params: dict[str, str] = {"limit": str(PAGE)}
        while True:
            began = time.perf_counter()
            response = http.get(url, params=params)
            response.raise_for_status()
            body = orjson.loads(response.content)
            latencies.append(time.perf_counter() - began)
            counts.append(len(body.get("objects", [])))
            if not body.get("more"):
                return
            params = {"limit": str(PAGE), "next": str(body["next"])}


def measure(
    name: str, target: Any, count: int, path: str, timeout: float
) -> dict[str, float] | None:
    """Start a server process, run the clients, report objects/s and p99."""
    ctx = mp.get_context("fork")
    sock = loopback_socket()
    sock.listen(128)
    port = sock.getsockname()[1]
    ready = ctx.Event()
    began_load = time.perf_counter()
    process = ctx.Process(target=target, args=(count, sock, ready), daemon=True)
    process.start()
    if not ready.wait(600):
        process.kill()
        raise RuntimeError(f"{name} did not start")
    load = time.perf_counter() - began_load
    url = f"http://127.0.0.1:{port}{path}"
    latencies: list[float] = []
    counts: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            client_run(url, latencies, counts, timeout)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    process.kill()
    process.join()
    sock.close()
    if errors:
        print(f"  {name}: failed: {errors[0]!r}")
        return None
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    total = sum(counts)
    result = {
        "objects_per_s": total / elapsed,
        "p99_ms": p99 * 1000,
        "median_ms": statistics.median(ordered) * 1000,
        "objects": total,
        "load_s": load,
    }
    print(
        f"  {name:9} {total:>8} objects in {elapsed:7.2f} s: "
        f"{result['objects_per_s']:>9.0f} objects/s, page p50 {result['median_ms']:7.1f} ms, "
        f"p99 {result['p99_ms']:7.1f} ms (startup {load:.1f} s)"
    )
    return result


def bench_serving(count: int, medallion_count: int, skip_medallion: bool, timeout: float) -> None:
    from dtim.taxii.collections import find_collection

    green = find_collection("tlp-green")
    assert green is not None
    print(
        f"TAXII serving: {count} indicators, {CLIENTS} concurrent clients, "
        f"limit={PAGE}, following next"
    )
    ours = measure(
        "dtim", serve_dtim, count, f"/taxii2/api/collections/{green.id}/objects/", timeout
    )
    if skip_medallion:
        return
    try:
        import medallion  # noqa: F401
    except ImportError:
        print("  medallion not installed (pip install -e .[bench]); skipped")
        return
    if medallion_count != count:
        print(
            f"  medallion with {medallion_count} indicators: its memory backend "
            "filters and sorts in O(n^2) "
            "per first page, so its rate only falls as n grows (--medallion-n to change)"
        )
    theirs = measure(
        "medallion",
        serve_medallion,
        medallion_count,
        "/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/",
        timeout,
    )
    if ours and theirs:
        print(
            f"  ratio: dtim/medallion objects/s = "
            f"{ours['objects_per_s'] / theirs['objects_per_s']:.1f}x (goal >= 5x)"
        )


def bench_export(count: int, stix2_count: int) -> None:
    import stix2

    from dtim.stix.bundle import BundleWriter
    from dtim.taxii.accounts import Account

    print(
        f"STIX bundle export: {count} indicators "
        f"(stix2 library measured on {min(count, stix2_count)})"
    )
    source = indicators(count)
    sharer = _privacy()
    account = Account(name="export", level="open", tlps=(Tlp.CLEAR, Tlp.GREEN))
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        shared_all = []
        with open(os.path.join(tmp, "dtim.json"), "wb") as out:
            writer = BundleWriter(out, stamp=START)
            for indicator in source:
                shared = sharer.share(indicator, account)
                if shared is not None:
                    writer.write(shared)
                    if len(shared_all) < stix2_count:
                        shared_all.append(shared)
            writer.close()
        full = time.perf_counter() - began
        size = os.path.getsize(os.path.join(tmp, "dtim.json"))
        # Mapping + serialisation alone, from filtered indicators: the part stix2 replaces.
        began = time.perf_counter()
        with open(os.path.join(tmp, "dtim2.json"), "wb") as out:
            writer = BundleWriter(out, stamp=START)
            for shared in shared_all:
                writer.write(shared)
            writer.close()
        ours = (time.perf_counter() - began) / len(shared_all)
        began = time.perf_counter()
        objects = []
        for shared in shared_all:
            objects.append(
                stix2.Indicator(
                    id=f"indicator--{shared['id']}",
                    created=shared["first_seen"],
                    modified=iso(START)
                    if iso(START) > str(shared["first_seen"])
                    else shared["first_seen"],
                    name=shared["value"],
                    pattern=f"[ipv4-addr:value = '{shared['value']}']",
                    pattern_type="stix",
                    pattern_version="2.1",
                    valid_from=shared["first_seen"],
                    valid_until=shared["valid_until"],
                    confidence=shared["confidence"],
                    labels=shared["tags"],
                    indicator_types=["malicious-activity"],
                    object_marking_refs=[stix2.TLP_GREEN],
                    allow_custom=True,
                )
            )
            objects.append(
                stix2.Sighting(
                    sighting_of_ref=f"indicator--{shared['id']}",
                    count=shared["sightings"],
                    first_seen=shared["first_seen"],
                    last_seen=shared["last_seen"],
                    object_marking_refs=[stix2.TLP_GREEN],
                )
            )
        stix2.Bundle(objects=objects, allow_custom=True).serialize()
        theirs = (time.perf_counter() - began) / len(shared_all)
    print(
        f"  dtim full pipeline (privacy filter + mapping + write): {count / full:>9.0f} "
        f"indicators/s ({full:.1f} s, {size / 1e6:.0f} MB)"
    )
    print(f"  dtim mapping + write:                                 {1 / ours:>9.0f} indicators/s")
    print(
        f"  stix2 library build + serialize:                      {1 / theirs:>9.0f} indicators/s"
    )
    print(
        f"  ratio: dtim mapping / stix2 = {theirs / ours:.0f}x; "
        f"full pipeline / stix2 = {(count / full) * theirs:.0f}x (goal >= 20x)"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=20_000, help="indicators served (issue figure: 100000)"
    )
    parser.add_argument(
        "--medallion-n",
        type=int,
        default=1000,
        help="indicators medallion serves (quadratic: 1000 takes a minute)",
    )
    parser.add_argument(
        "--export-n", type=int, default=100_000, help="indicators exported (issue figure: 1000000)"
    )
    parser.add_argument(
        "--stix2-n", type=int, default=20_000, help="indicators built with the stix2 library"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="per-page timeout in seconds")
    parser.add_argument("--skip-medallion", action="store_true")
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_serving:
        bench_serving(args.n, args.medallion_n, args.skip_medallion, args.timeout)
    if not args.skip_export:
        bench_export(args.export_n, args.stix2_n)


if __name__ == "__main__":
    main(sys.argv[1:])
