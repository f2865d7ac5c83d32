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
