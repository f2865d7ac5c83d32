"""The node's admin listener as ``dtim node run`` builds it: dashboard, health, metrics and TAXII
at ``/taxii2``, with an account added by ``dtim taxii users add`` while it runs (taxii2-client)."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import requests
from taxii2client.v21 import Server

from dtim.api.auth import BLOCKLIST_SCOPE, create_api_token
from dtim.cli.common import open_home
from dtim.cli.main import run
from dtim.model import make_indicator
from dtim.service import build_admin_app, open_store
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
