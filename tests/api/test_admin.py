"""The admin API and login in-process (ASGITransport): auth, CSRF, lock-out, every route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from dtim.api import admin_ops
from dtim.api.auth import create_api_token, set_admin_password
from dtim.config import NodeHome
from dtim.crypto.keyring import Keyring
from dtim.model import Tlp, make_indicator
from dtim.store import IndicatorStats, Store, StoreCounts
from dtim.web.node import node_admin_app
from tests.web.harness import (
    NOW,
    PASSWORD,
    SeededPeer,
    admin_app,
    csrf_in,
    log_in,
    make_home,
    seed,
)


@dataclass
class Admin:
    """A logged-out client on a seeded node's admin app."""

    client: httpx.AsyncClient
    home_keys: Path
    peer: SeededPeer
    store: Store


@asynccontextmanager
async def _admin_of(home: NodeHome) -> AsyncIterator[Admin]:
    """A logged-out client on ``home``'s seeded admin app."""
    store = Store(home.database_url)
    await store.connect()
    try:
        peer = await seed(home, store)
        transport = httpx.ASGITransport(app=admin_app(home, store))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Admin(client, home.keys_dir, peer, store)
    finally:
        await store.close()


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    environ = {"DTIM__WATCHERS__VIRUSTOTAL_API_KEY": "vt-secret-key-123"}
    async with _admin_of(make_home(tmp_path / "node", environ=environ)) as opened:
        yield opened


@pytest.fixture
async def admin_on_each_backend(tmp_path: Path, store_url: str) -> AsyncIterator[Admin]:
    """:func:`admin` on SQLite and, when configured, PostgreSQL."""
    environ = {"DTIM__STORAGE__DATABASE_URL": store_url}
    async with _admin_of(make_home(tmp_path / "node", environ=environ)) as opened:
        yield opened


async def _session(admin: Admin) -> str:
    """Log in; returns the CSRF token of the session."""
    response = await log_in(admin.client)
    assert response.status_code == 303
    page = await admin.client.get("/")
    assert page.status_code == 200
    return csrf_in(page.text)


async def test_everything_needs_a_session_or_token(admin: Admin) -> None:
    for path in (
        "/api/admin/overview",
        "/api/admin/indicators",
        "/api/admin/peers",
        "/api/admin/audit",
    ):
        response = await admin.client.get(path)
        assert response.status_code == 401, path
    page = await admin.client.get("/indicators?q=evil")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Findicators%3Fq%3Devil"
    refused = await admin.client.post("/api/admin/indicators", json={"value": "evil.test"})
    assert refused.status_code == 401


async def test_login_sets_a_strict_http_only_cookie(admin: Admin) -> None:
    response = await log_in(admin.client)
    cookie = response.headers["set-cookie"]
    assert "dtim_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    assert (await admin.client.get("/api/admin/overview")).status_code == 200


async def test_login_form_needs_its_csrf_token(admin: Admin) -> None:
    await admin.client.get("/login")
    forged = await admin.client.post("/login", data={"password": PASSWORD, "csrf_token": "forged"})
    assert forged.status_code == 403
    assert "dtim_session" not in forged.headers.get("set-cookie", "")


async def test_wrong_passwords_lock_the_client_out(admin: Admin) -> None:
    for _ in range(4):
        assert (await log_in(admin.client, "wrong password!")).status_code == 401
    fifth = await log_in(admin.client, "wrong password!")
    assert fifth.status_code == 401
    assert "too many failed logins" in fifth.text
    locked = await log_in(admin.client)  # the right password, but locked out
    assert locked.status_code == 401
    assert "too many failed logins" in locked.text
    assert (await admin.client.get("/api/admin/overview")).status_code == 401


async def test_state_changes_need_the_csrf_token(admin: Admin) -> None:
    csrf = await _session(admin)
    body = {"value": "csrf.example"}
    assert (await admin.client.post("/api/admin/indicators", json=body)).status_code == 403
    wrong = await admin.client.post(
        "/api/admin/indicators", json=body, headers={"X-CSRF-Token": "x" * 43}
    )
    assert wrong.status_code == 403
    form = await admin.client.post(
        "/indicators", data={"value": "csrf.example", "csrf_token": "nope"}
    )
    assert form.status_code == 403
    ok = await admin.client.post("/api/admin/indicators", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert ok.json()["value"] == "csrf.example"


async def test_api_tokens_work_without_csrf_and_bad_ones_are_refused(admin: Admin) -> None:
    token = create_api_token(admin.home_keys, "ci", now=NOW)
    good = {"Authorization": f"Bearer {token}"}
    assert (await admin.client.get("/api/admin/peers", headers=good)).status_code == 200
    added = await admin.client.post(
        "/api/admin/indicators", json={"value": "203.0.113.77"}, headers=good
    )
    assert added.status_code == 201
    bad = {"Authorization": "Bearer dtim_" + "A" * 43}
    assert (await admin.client.get("/api/admin/peers", headers=bad)).status_code == 401
    assert token not in (admin.home_keys / "admin-tokens.json").read_text()


async def test_search_detail_edit_and_delete(admin: Admin) -> None:
    token = create_api_token(admin.home_keys, "ci", now=NOW)
    client, auth = admin.client, {"Authorization": f"Bearer {token}"}
    found = (
        await client.get("/api/admin/indicators", params={"q": "evil.ex"}, headers=auth)
    ).json()
    assert [i["value"] for i in found["items"]] == ["evil.example"]
    inside = (
        await client.get("/api/admin/indicators", params={"q": "198.51.100.0/28"}, headers=auth)
    ).json()
    assert inside["mode"] == "network"
    assert len(inside["items"]) == 16
    page = (
        await client.get(
            "/api/admin/indicators", params={"limit": 50, "type": "ipv4"}, headers=auth
        )
    ).json()
    second = await client.get(
        "/api/admin/indicators",
        params={"cursor": page["next_cursor"], "type": "ipv4"},
        headers=auth,
    )
    assert not {i["id"] for i in page["items"]} & {i["id"] for i in second.json()["items"]}
    bad = await client.get("/api/admin/indicators", params={"sort": "colour"}, headers=auth)
    assert bad.status_code == 400
    assert bad.json()["field"] == "sort"

    sighted = (
        await client.get("/api/admin/indicators", params={"q": "185.220.101.4"}, headers=auth)
    ).json()["items"][0]
    detail = (await client.get(f"/api/admin/indicators/{sighted['id']}", headers=auth)).json()
    assert detail["sightings"][0]["evidence"]["hosts"] == ["db-internal-7"]
    levels = {p["label"]: p for p in detail["privacy"]}
    assert levels["approved peer, level strict"]["output"]["value"] == "185.220.101.4"
    assert "confidence" not in levels["approved peer, level strict"]["output"]
    assert levels["public endpoint"]["shared"] is False  # GREEN is not public
    assert detail["curve"][0][1] == 75
    assert detail["curve"][-1][1] == 0

    edited = await client.patch(
        f"/api/admin/indicators/{sighted['id']}",
        json={"tlp": "amber", "recipients": ["partners"]},
        headers=auth,
    )
    assert edited.json()["tlp"] == "amber"
    history = (await client.get(f"/api/admin/indicators/{sighted['id']}", headers=auth)).json()[
        "history"
    ]
    assert history[0]["action"] == "edited"
    assert history[0]["detail"]["recipients"] == ["partners"]
    assert (
        await client.delete(f"/api/admin/indicators/{sighted['id']}", headers=auth)
    ).status_code == 200
    assert (
        await client.get(f"/api/admin/indicators/{sighted['id']}", headers=auth)
    ).status_code == 404
    invalid = await client.post(
        "/api/admin/indicators", json={"value": "not a thing at all"}, headers=auth
    )
    assert invalid.status_code == 400


async def test_peer_lifecycle_and_audit_log(admin: Admin) -> None:
    token = create_api_token(admin.home_keys, "ci", now=NOW)
    client, auth = admin.client, {"Authorization": f"Bearer {token}"}
    pid = admin.peer.id
    wrong = await client.post(
        f"/api/admin/peers/{pid}/approve", json={"fingerprint": "SHA256:not-it"}, headers=auth
    )
    assert wrong.status_code == 400
    assert wrong.json()["field"] == "fingerprint"
    approved = await client.post(
        f"/api/admin/peers/{pid}/approve",
        json={"fingerprint": admin.peer.fingerprint},
        headers=auth,
    )
    assert approved.json()["status"] == "approved"
    grouped = await client.put(
        f"/api/admin/peers/{pid}/groups", json={"groups": ["isac", "partners"]}, headers=auth
    )
    assert grouped.json()["groups"] == ["isac", "partners"]
    revoked = await client.post(f"/api/admin/peers/{pid}/revoke", headers=auth)
    assert revoked.json()["status"] == "revoked"
    added = await client.post(
        "/api/admin/peers", json={"endpoint": "https://new.example:3030"}, headers=auth
    )
    assert added.status_code == 201
    assert added.json()["status"] == "pending"
    dup = await client.post(
        "/api/admin/peers", json={"endpoint": "https://new.example:3030"}, headers=auth
    )
    assert dup.status_code == 400
    assert (
        await client.post("/api/admin/peers", json={"endpoint": "ftp://x"}, headers=auth)
    ).status_code == 400
    rejected = await client.post(f"/api/admin/peers/{added.json()['id']}/reject", headers=auth)
    assert rejected.json()["status"] == "rejected"
    assert (await client.post("/api/admin/peers/nope/revoke", headers=auth)).status_code == 404
    peers = (await client.get("/api/admin/peers", headers=auth)).json()
    assert [p["id"] for p in peers["revoked"]] == [pid]

    log = (await client.get("/api/admin/audit", headers=auth)).json()
    events = [r["event"] for r in log["records"]]
    assert events[:4] == ["peer_rejected", "peer_added", "peer_revoked", "peer_groups_changed"]
    assert "peer_approved" in events
    only = (
        await client.get("/api/admin/audit", params={"event": "peer_revoked"}, headers=auth)
    ).json()
    assert [r["peer"] for r in only["records"]] == [pid]
    assert (
        await client.get("/api/admin/audit", params={"date": "yesterday"}, headers=auth)
    ).status_code == 400


async def test_settings_are_masked_and_keys_rotate(admin: Admin) -> None:
    token = create_api_token(admin.home_keys, "ci", now=NOW)
    client, auth = admin.client, {"Authorization": f"Bearer {token}"}
    settings = await client.get("/api/admin/settings", headers=auth)
    assert settings.json()["watchers"]["virustotal_api_key"] == "***"
    assert "vt-secret-key-123" not in settings.text
    keys = (await client.get("/api/admin/keys", headers=auth)).json()
    assert {k["kind"] for k in keys["keys"]} == {"identity", "tls", "logs"}
    before = Keyring.load(admin.home_keys).current_key_id
    await client.post(
        "/api/admin/peers/x/revoke", headers=auth
    )  # an audit record under the old key
    rotated = await client.post("/api/admin/keys/logs/rotate", headers=auth)
    assert rotated.status_code == 200
    assert Keyring.load(admin.home_keys).current_key_id != before
    log = (await client.get("/api/admin/audit", headers=auth)).json()["records"]
    assert log[0]["event"] == "key_rotated"
    assert (await client.post("/api/admin/keys/moon/rotate", headers=auth)).status_code == 400


async def test_logout_and_password_change_end_sessions(admin: Admin) -> None:
    csrf = await _session(admin)
    assert (await admin.client.post("/logout", data={"csrf_token": csrf})).status_code == 303
    assert (await admin.client.get("/api/admin/overview")).status_code == 401
    await _session(admin)
    set_admin_password(admin.home_keys, "a brand new password")
    assert (await admin.client.get("/api/admin/overview")).status_code == 401
    assert (await log_in(admin.client, "a brand new password")).status_code == 303


async def test_every_page_renders(admin: Admin) -> None:
    await _session(admin)
    for path in (
        "/",
        "/indicators",
        "/indicators?q=198.51.100.0/24&sort=confidence",
        "/peers",
        "/logs",
        "/settings",
    ):
        response = await admin.client.get(path)
        assert response.status_code == 200, path
        assert "Content-Security-Policy" in response.headers
        assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")
    overview = await admin.client.get("/")
    assert overview.text.count("<svg") >= 5
    listing = await admin.client.get("/indicators?type=ipv4")
    assert 'id="next-page"' in listing.text
    assert (await admin.client.get("/static/dtim.css")).status_code == 200


async def test_indicator_table_rows_show_the_store_and_escape_it(admin: Admin) -> None:
    await _session(admin)
    evil = await admin.store.find_indicator("domain", "evil.example")
    assert evil is not None
    listing = await admin.client.get("/indicators", params={"q": "evil.example"})
    assert (
        f'<tr><td class="value"><a href="/indicators/{evil.id}">evil.example</a></td>'
        '<td>domain</td><td><span class="tlp tlp-green">green</span></td>'
        '<td class="num">85</td><td class="num">1</td><td>nginx_access</td>'
        f'<td class="nowrap">{evil.last_seen:%Y-%m-%d %H:%M}</td></tr>'
    ) in listing.text
    # Values from peers are validated on the way in; the page must not rely on it.
    hostile = replace(
        evil,
        value='<img src=x onerror="alert(1)">.example',
        tlp=Tlp.AMBER_STRICT,
        sources=("peer<b>", 'a"b'),
    )
    await admin.store.replace_indicator(hostile)
    listing = await admin.client.get("/indicators")  # the latest change comes first
    assert "<img" not in listing.text
    assert "<b>" not in listing.text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.example" in listing.text
    assert "peer&lt;b&gt;, a&quot;b" in listing.text
    assert '<span class="tlp tlp-amber-strict">amber+strict</span>' in listing.text
    # A NUL in a stored text (SQLite can hold one) must not shift the cells of the rows.
    await admin.store.replace_indicator(replace(hostile, value="nul\x00<i>.example"))
    listing = await admin.client.get("/indicators")
    assert (
        f'<a href="/indicators/{evil.id}">nul\x00&lt;i&gt;.example</a></td><td>domain</td>'
    ) in listing.text
    empty = await admin.client.get("/indicators", params={"q": "nothing.invalid"})
    assert "No indicators match." in empty.text


async def test_indicator_filters_show_the_chosen_values(admin: Admin) -> None:
    await _session(admin)
    chosen = {"type": "domain", "tlp": "green", "max_age_days": "7", "sort": "value"}
    listing = await admin.client.get("/indicators", params={**chosen, "order": "asc"})
    assert listing.status_code == 200
    for option in (
        '<option value="domain" selected>domain</option>',
        '<option value="green" selected>green</option>',
        '<option value="7" selected>last 7 days</option>',
        '<option value="value" selected>value</option>',
        '<option value="asc" selected>ascending</option>',
    ):
        assert option in listing.text
    # Those five, and the add form's defaults: TLP green, scope private.
    assert listing.text.count(" selected>") == 7
    assert '<option value="private" selected>private</option>' in listing.text
    typed = {"q": 'evil"><b>', "source": "nginx_access", "min_confidence": "60"}
    listing = await admin.client.get("/indicators", params=typed)
    assert listing.status_code == 200
    assert 'value="evil&#34;&gt;&lt;b&gt;"' in listing.text
    assert 'name="source" value="nginx_access"' in listing.text
    assert 'value="60"' in listing.text
    assert "Searching by" in listing.text
    # With nothing chosen, each filter shows its default.
    listing = await admin.client.get("/indicators")
    assert listing.text.count(" selected>") == 4  # any age, sort changed, TLP green, private
    assert '<option value="changed" selected>changed</option>' in listing.text
    assert "Searching by" not in listing.text
    # Kept ASCII (entities for the rest) while the data is: encoding the page is then a copy.
    assert listing.content.isascii()


NUL = "a\x00b"


async def test_nul_characters_are_bad_input_on_every_backend(
    admin_on_each_backend: Admin,
) -> None:
    # PostgreSQL cannot hold U+0000 in text: each of these failed there with a 500.
    admin = admin_on_each_backend
    token = create_api_token(admin.home_keys, "ci", now=NOW)
    api = {"Authorization": f"Bearer {token}"}
    peer = admin.peer.id
    calls = [
        ("GET", "/api/admin/indicators", {"params": {"q": NUL}}, "q"),
        ("GET", "/api/admin/indicators", {"params": {"source": NUL}}, "source"),
        ("GET", "/api/admin/indicators/a%00b", {}, "indicator_id"),
        ("DELETE", "/api/admin/indicators/a%00b", {}, "indicator_id"),
        ("POST", "/api/admin/peers/a%00b/revoke", {}, "peer_id"),
        ("POST", "/api/admin/peers", {"json": {"endpoint": f"https://{NUL}.example"}}, "endpoint"),
        ("PUT", f"/api/admin/peers/{peer}/groups", {"json": {"groups": ["ok", NUL]}}, "groups"),
        ("POST", "/api/admin/indicators", {"json": {"value": "x.example", "tags": [NUL]}}, "tags"),
        ("GET", "/api/admin/audit", {"params": {"q": NUL}}, "q"),
    ]
    for method, path, extra, field in calls:
        answer = await admin.client.request(method, path, headers=api, **extra)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json() == {"error": "must not contain a NUL character", "field": field}
    csrf = await _session(admin)
    # Pages are plain Starlette routes, outside the app's dependency: each checks itself.
    pages = [
        ("GET", "/indicators", {"params": {"q": NUL}}),
        ("GET", "/indicators/a%00b", {}),
        ("GET", "/logs", {"params": {"q": NUL}}),
        ("GET", "/peers/a%00b/approve", {}),
        ("POST", "/peers", {"data": {"endpoint": f"https://{NUL}.example", "csrf_token": csrf}}),
        ("POST", "/peers/a%00b/revoke", {"data": {"csrf_token": csrf}}),
        ("POST", f"/peers/{peer}/groups", {"data": {"groups": NUL, "csrf_token": csrf}}),
    ]
    for method, path, extra in pages:
        page = await admin.client.request(method, path, **extra)
        assert page.status_code == 400, (method, path, page.text)
        assert "must not contain a NUL character" in page.text
    assert (await admin.store.get_peer(peer)) is not None  # nothing stored was touched
    listing = await admin.client.get("/indicators")
    assert listing.status_code == 200


async def test_expired_overview_counts_are_served_while_one_refresh_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[asyncio.Task[None]] = []
    gate = asyncio.Event()  # refreshes wait here until the test lets them run

    async def gated(work: Coroutine[Any, Any, None]) -> None:
        await gate.wait()
        await work

    def spawn(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(gated(work), name=name)
        started.append(task)
        return task

    home = make_home(tmp_path / "node")
    async with Store(home.database_url) as store:
        await seed(home, store)
        token = create_api_token(home.keys_dir, "ci", now=NOW)
        transport = httpx.ASGITransport(app=node_admin_app(home, store, spawn=spawn))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:

            async def total() -> int:
                overview = await client.get("/api/admin/overview")
                return int(overview.json()["counts"]["total"])

            before = await total()  # the first request waits for the figures
            assert started == []
            monkeypatch.setattr(admin_ops, "STATS_TTL", 0.0)  # from now on they are expired
            await store.upsert_indicators([make_indicator("fresh.example", now=NOW)])
            assert await total() == before  # served at once, as they were
            assert await total() == before  # still refreshing: no second refresh starts
            assert sorted(t.get_name() for t in started) == [
                "overview-counts",
                "overview-shared",
                "overview-stats",
            ]
            gate.set()
            await asyncio.gather(*started)
            started.clear()
            assert await total() == before + 1
            await asyncio.gather(*started)


async def test_the_overviews_first_figures_are_computed_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each is a full-table scan at first (about a second each at a million indicators).
    home = make_home(tmp_path / "node")
    async with Store(home.database_url) as store:
        await seed(home, store)
        token = create_api_token(home.keys_dir, "ci", now=NOW)
        stats_began = asyncio.Event()
        counts, stats = store.counts, store.indicator_stats
        total = (await counts()).total

        async def counts_once_stats_began() -> StoreCounts:
            await stats_began.wait()  # one after the other, this would wait forever
            return await counts()

        async def stats_announced(**kwargs: Any) -> IndicatorStats:
            stats_began.set()
            return await stats(**kwargs)

        monkeypatch.setattr(store, "counts", counts_once_stats_began)
        monkeypatch.setattr(store, "indicator_stats", stats_announced)
        transport = httpx.ASGITransport(app=node_admin_app(home, store))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            async with asyncio.timeout(30):
                overview = await client.get("/api/admin/overview")
    assert overview.status_code == 200
    assert overview.json()["counts"]["total"] == total > 0


async def test_secure_cookie_when_served_over_tls(tmp_path: Path) -> None:
    home = make_home(tmp_path / "tls")
    store = Store(home.database_url)
    await store.connect()
    try:
        transport = httpx.ASGITransport(app=admin_app(home, store, tls=True))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            response = await log_in(client)
        assert "Secure" in response.headers["set-cookie"]
    finally:
        await store.close()


async def test_framework_errors_use_the_admin_error_shape(admin: Admin) -> None:
    """Unreadable bodies, unknown paths and wrong methods answer like every other admin error."""
    token = create_api_token(admin.home_keys, "ci", now=NOW)
    auth = {"Authorization": f"Bearer {token}"}
    unreadable = await admin.client.post(
        "/api/admin/indicators",
        content=b"\xa3r",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert unreadable.status_code == 400
    assert unreadable.json() == {"error": "There was an error parsing the body"}
    missing = await admin.client.get("/api/admin/nothing-here", headers=auth)
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong = await admin.client.put("/api/admin/overview", headers=auth)
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "Method Not Allowed"}
    assert "GET" in wrong.headers["allow"]
    page = await admin.client.get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_confidence": "1e400"}, "min_confidence"),
        ({"max_confidence": "nan"}, "max_confidence"),
        ({"max_age_days": "inf"}, "max_age_days"),
        ({"max_age_days": "1e10"}, "max_age_days"),
        ({"cursor": "WzAsMTg0NDY3NDQwNzM3MDk1NTE2MTVd"}, "cursor"),  # [0, 2**64 - 1]
    ],
)
async def test_search_numbers_out_of_range_are_400(
    admin: Admin, params: dict[str, str], field: str
) -> None:
    token = create_api_token(admin.home_keys, "ci", now=NOW)
    response = await admin.client.get(
        "/api/admin/indicators", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
