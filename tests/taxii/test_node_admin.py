"""The node's admin listener as ``dtim node run`` builds it: dashboard, health, metrics and TAXII
at ``/taxii2``, with an account added by ``dtim taxii users add`` while it runs (taxii2-client)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import orjson
import pytest
import requests
from taxii2client.v21 import Server

from dtim.api.auth import BLOCKLIST_SCOPE, create_api_token
from dtim.api.misp_feed import MispFeedFiles
from dtim.cli.common import open_home
from dtim.cli.main import run
from dtim.model import SystemClock, make_indicator
from dtim.service import TAXII_ACCOUNTS_FILE, build_admin_app, open_store
from dtim.stix.bundle import ImportReport
from dtim.stix.feeds.misp import read_misp
from dtim.taxii.wiring import node_runtime
from dtim.web.node import privacy_filter_for
from tests.servers import running_server

PASSWORD = "a long enough taxii password"


async def test_admin_listener_serves_dashboard_health_metrics_and_taxii(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "node"
    assert run(["init", "--home", str(root), "--json"]) == 0
    home = open_home(root)
    now = datetime.now(UTC)
    async with open_store(home) as store:
        await store.upsert_indicators(
            [make_indicator("45.66.77.88", now=now, tlp="green", confidence=80)]
        )
        app = build_admin_app(home, store)
        with running_server(app) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                assert (await client.get("/healthz")).status_code == 200
                assert (await client.get("/readyz")).status_code == 200
                metrics = await client.get("/metrics")
                assert 'dtim_indicators{type="ipv4"} 1' in metrics.text
                login = await client.get("/login")
                assert login.status_code == 200
                assert "<form" in login.text
                unauthenticated = await client.get("/api/admin/indicators")
                assert unauthenticated.status_code == 401
                sensor = await client.post("/api/v1/sensors/sightings", content=b"{}")
                assert sensor.status_code == 401  # mounted, and wants a sensor token

            taxii = server.url("/taxii2/")

            def refused() -> int:
                try:
                    Server(taxii, user="soc", password=PASSWORD).refresh()
                except requests.HTTPError as exc:
                    return exc.response.status_code
                return 200

            assert await asyncio.to_thread(refused) == 401

            monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
            added = ["taxii", "users", "add", "soc", "--password-stdin", "--home", str(root)]
            assert await asyncio.to_thread(run, added) == 0

            def values() -> set[str]:
                api_root = Server(taxii, user="soc", password=PASSWORD).default
                assert api_root is not None
                green = next(c for c in api_root.collections if "GREEN" in c.title)
                objects = green.get_objects(type="indicator").get("objects", [])
                return {str(o["pattern"]) for o in objects}

            patterns = await asyncio.to_thread(values)
            assert patterns == {"[ipv4-addr:value = '45.66.77.88']"}


async def test_blocklist_and_exports_over_http(tmp_path: Path) -> None:
    root = tmp_path / "node"
    assert run(["init", "--home", str(root), "--json"]) == 0
    home = open_home(root)
    now = datetime.now(UTC)
    blocked = make_indicator("45.66.77.88", now=now, tlp="green", confidence=80)
    rows = [
        blocked,
        make_indicator("45.66.77.99", now=now, tlp="green", confidence=30),
        make_indicator("45.66.77.100", now=now, tlp="amber", confidence=90),
        make_indicator("phish-login.top", now=now, tlp="clear", confidence=90),
    ]
    blocklist_token = create_api_token(home.keys_dir, "pfsense", now=now, scope=BLOCKLIST_SCOPE)
    admin_token = create_api_token(home.keys_dir, "siem", now=now)
    async with open_store(home) as store:
        await store.upsert_indicators(rows)
        with running_server(build_admin_app(home, store)) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                assert (await client.get("/blocklist.txt")).status_code == 401
                wrong = await client.get("/blocklist.txt", params={"token": "dtim_wrong"})
                assert wrong.status_code == 401
                ipv4 = await client.get(
                    "/blocklist.txt", params={"token": blocklist_token, "type": "ipv4"}
                )
                assert ipv4.status_code == 200
                assert ipv4.text.split() == ["45.66.77.88"]  # not low confidence, not AMBER
                every = await client.get(
                    "/blocklist.txt", headers={"Authorization": f"Bearer {blocklist_token}"}
                )
                assert sorted(every.text.split()) == ["45.66.77.88", "phish-login.top"]

                as_blocklist = {"Authorization": f"Bearer {blocklist_token}"}
                refused = await client.get("/api/admin/export", headers=as_blocklist)
                assert refused.status_code == 401
                as_admin = {"Authorization": f"Bearer {admin_token}"}
                csv = await client.get(
                    "/api/admin/export", params={"format": "csv"}, headers=as_admin
                )
                assert csv.status_code == 200
                assert csv.headers["x-dtim-count"] == "3"
                assert "45.66.77.99" in csv.text
                assert "45.66.77.100" not in csv.text
                stix = await client.get("/api/admin/export", headers=as_admin)
                assert stix.json()["type"] == "bundle"
                misp = await client.get(
                    "/api/admin/export", params={"format": "misp"}, headers=as_admin
                )
                assert misp.status_code == 400
                assert misp.json()["field"] == "format"


async def test_misp_feed_over_http_is_what_a_misp_instance_pulls(tmp_path: Path) -> None:
    root = tmp_path / "node"
    assert run(["init", "--home", str(root), "--json"]) == 0
    home = open_home(root)
    now = datetime.now(UTC)
    rows = [
        make_indicator("45.66.77.88", now=now, tlp="green", confidence=80, tags=["ssh"]),
        make_indicator("45.66.77.100", now=now, tlp="amber", confidence=90),
        make_indicator("phish-login.top", now=now, tlp="clear", confidence=90),
        make_indicator("a" * 64, now=now, tlp="green", confidence=60),
    ]
    feed_token = create_api_token(home.keys_dir, "misp", now=now, scope=BLOCKLIST_SCOPE)
    async with open_store(home) as store:
        await store.upsert_indicators(rows)
        with running_server(build_admin_app(home, store)) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                assert (await client.get("/feeds/misp/manifest.json")).status_code == 401
                auth = {"Authorization": f"Bearer {feed_token}"}
                manifest = await client.get("/feeds/misp/manifest.json", headers=auth)
                assert manifest.status_code == 200
                events = manifest.json()
                assert {e["Tag"][0]["name"] for e in events.values()} == {"tlp:clear", "tlp:green"}
                pulled = tmp_path / "pulled"
                pulled.mkdir()
                values: set[str] = set()
                for uuid in events:
                    event = await client.get(
                        f"/feeds/misp/{uuid}.json", params={"token": feed_token}
                    )
                    assert event.status_code == 200
                    assert event.json()["Event"]["uuid"] == uuid
                    values |= {a["value"] for a in event.json()["Event"]["Attribute"]}
                    (pulled / f"{uuid}.json").write_bytes(event.content)
                assert values == {"45.66.77.88", "phish-login.top", "a" * 64}  # never AMBER
                hashes = await client.get("/feeds/misp/hashes.csv", headers=auth)
                digests = {line.split(",")[0] for line in hashes.text.split()}
                assert digests == {
                    hashlib.md5(v.encode()).hexdigest() for v in values
                }  # MISP's format
                for name in ("../../keys/identity.key", "passwd.json", f"{uuid4()}.json"):
                    missing = await client.get(f"/feeds/misp/{name}", headers=auth)
                    assert missing.status_code == 404, name
    report = ImportReport()
    imported = list(read_misp(pulled, report, now=now))
    assert {i.value for i in imported} == values
    assert {i.tlp.value for i in imported} == {"clear", "green"}


async def test_misp_feed_is_rebuilt_only_when_the_store_changed_and_the_build_aged(
    tmp_path: Path,
) -> None:
    root = tmp_path / "node"
    assert run(["init", "--home", str(root), "--json"]) == 0
    home = open_home(root)
    now = datetime.now(UTC)
    clock = [1000.0]
    async with open_store(home) as store:
        accounts = home.config_dir / TAXII_ACCOUNTS_FILE
        runtime = node_runtime(store, privacy_filter_for(home), accounts, SystemClock())

        async def build(directory: Path) -> int:
            return await runtime.export(
                format="misp",
                level="moderate",
                tlps=[],
                groups=[],
                min_confidence=None,
                types=[],
                out=directory,
            )

        feed = MispFeedFiles(
            tmp_path / "feed", build, store.last_seq, min_age=60, clock=lambda: clock[0]
        )

        async def served_values() -> set[str]:
            manifest = await feed.file("manifest.json")
            assert manifest is not None
            found: set[str] = set()
            for uuid in orjson.loads(manifest.read_bytes()):
                event = await feed.file(f"{uuid}.json")
                assert event is not None
                found |= {
                    a["value"] for a in orjson.loads(event.read_bytes())["Event"]["Attribute"]
                }
            return found

        await store.upsert_indicators([make_indicator("45.66.77.88", now=now, tlp="green")])
        assert await served_values() == {"45.66.77.88"}
        first = await feed.file("manifest.json")
        await store.upsert_indicators([make_indicator("45.66.77.99", now=now, tlp="green")])
        clock[0] += 30  # changed, but the build is younger than min_age: served as it is
        assert await served_values() == {"45.66.77.88"}
        clock[0] += 31
        assert await served_values() == {"45.66.77.88", "45.66.77.99"}
        second = await feed.file("manifest.json")
        assert first is not None
        assert second != first
        assert first.exists()  # a pull that began on the build before can finish
        clock[0] += 120  # aged, but nothing changed: no new build
        assert await feed.file("manifest.json") == second
        await store.upsert_indicators([make_indicator("45.66.77.7", now=now, tlp="green")])
        assert await feed.file("manifest.json") != second
        assert not first.exists()  # two builds back: removed
