"""``dtim admin passwd`` and ``dtim admin token create`` on a real node home."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
from typer.testing import CliRunner

from dtim.cli.admin import app
from dtim.store import Store
from tests.web.harness import admin_app, log_in, make_home


async def test_passwd_from_stdin_and_token_create(tmp_path: Path) -> None:
    home = make_home(tmp_path / "node")
    runner = CliRunner()
    short = runner.invoke(
        app, ["passwd", "--home", str(home.root), "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0
    changed = runner.invoke(
        app,
        ["passwd", "--home", str(home.root), "--password-stdin"],
        input="the new admin secret\n",
    )
    assert changed.exit_code == 0, changed.output
    created = runner.invoke(
        app, ["token", "create", "--home", str(home.root), "--name", "ci", "--json"]
    )
    assert created.exit_code == 0, created.output
    token = orjson.loads(created.stdout)["token"]
    assert token.startswith("dtim_")

    store = Store(home.database_url)
    await store.connect()
    try:
        transport = httpx.ASGITransport(app=admin_app(home, store))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await log_in(client)).status_code == 401  # the old password is gone
            assert (await log_in(client, "the new admin secret")).status_code == 303
            fresh = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            async with fresh:
                ok = await fresh.get(
                    "/api/admin/overview", headers={"Authorization": f"Bearer {token}"}
                )
                assert ok.status_code == 200
    finally:
        await store.close()


async def test_a_blocklist_token_cannot_use_the_admin_api(tmp_path: Path) -> None:
    home = make_home(tmp_path / "node")
    created = CliRunner().invoke(
        app, ["token", "create", "--home", str(home.root), "--blocklist", "--json"]
    )
    assert created.exit_code == 0, created.output
    document = orjson.loads(created.stdout)
    assert document["scope"] == "blocklist"
    store = Store(home.database_url)
    await store.connect()
    try:
        transport = httpx.ASGITransport(app=admin_app(home, store))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            refused = await client.get(
                "/api/admin/overview", headers={"Authorization": f"Bearer {document['token']}"}
            )
            assert refused.status_code == 401
    finally:
        await store.close()
