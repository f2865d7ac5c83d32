"""End to end in headless Chromium against a node's admin app on 127.0.0.1 (uvicorn, port 0).

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and Playwright for
Python (test extra); Playwright drives the system browser, it never downloads one.
Set ``DTIM_SCREENSHOTS=docs/screenshots`` to refresh the README screenshots.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dtim.store import Store
from tests.servers import running_server
from tests.web.harness import PASSWORD, SeededPeer, admin_app, make_home, seed

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless browser tests need /usr/bin/chromium (apt-get install -y chromium)",
)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python (pip install playwright)"
)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class Node:
    """The admin app's base URL and the seeded pending peer."""

    base_url: str
    peer: SeededPeer


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    home = make_home(tmp_path / "node")
    store = Store(home.database_url)
    asyncio.run(store.connect())
    try:
        peer = asyncio.run(seed(home, store))
        with running_server(admin_app(home, store)) as server:
            yield Node(server.base_url, peer)
    finally:
        asyncio.run(store.close())


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("DTIM_SCREENSHOTS") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_admin_flow_in_a_real_browser(node: Node, shots: Path) -> None:
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 860}, color_scheme="dark"
            )
            context.set_default_timeout(10_000)
            page = context.new_page()

            # Not logged in: pages send the browser to the login form.
            page.goto(node.base_url + "/peers")
            expect(page).to_have_url(node.base_url + "/login?next=%2Fpeers")
            page.screenshot(path=shots / "login.png")

            # Log in with the keyboard only: the password field has focus, Enter submits.
            expect(page.locator("#password")).to_be_focused()
            page.keyboard.type(PASSWORD)
            page.keyboard.press("Enter")
            expect(page).to_have_url(node.base_url + "/peers")

            # Overview: the charts are real SVG with bars in them.
            page.goto(node.base_url + "/")
            expect(page.locator("#chart-hourly svg rect").first).to_be_visible()
            assert page.locator("#chart-hourly svg rect").count() > 50
            assert page.locator("#chart-confidence svg rect").count() == 10
            expect(page.locator("#chart-flow svg")).to_be_visible()
            expect(page.locator("#total")).to_have_text("123")
            page.screenshot(path=shots / "overview.png", full_page=True)

            # Search: CIDR containment, then a value prefix and its detail page.
            page.goto(node.base_url + "/indicators")
            page.fill("#q", "198.51.100.0/28")
            page.press("#q", "Enter")
            expect(page.locator("#results tbody tr")).to_have_count(16)
            page.screenshot(path=shots / "indicators.png", full_page=True)
            page.fill("#q", "185.220")
            page.press("#q", "Enter")
            page.click("text=185.220.101.4")
            expect(page.locator("#chart-decay svg polyline")).to_be_visible()
            expect(page.locator("pre.evidence")).to_contain_text("db-internal-7")
            expect(page.locator("#privacy tbody tr")).to_have_count(4)
            page.screenshot(path=shots / "indicator.png", full_page=True)

            # Approve the pending peer: the fingerprint must be confirmed.
            page.goto(node.base_url + "/peers")
            row = page.locator(f"#peers-pending tr[data-peer='{node.peer.id}']")
            row.get_by_role("link", name="Approve…").click()
            expect(page.locator("#fingerprint")).to_have_text(node.peer.fingerprint)
            page.screenshot(path=shots / "approve.png")
            page.fill("#confirm-fingerprint", "SHA256:somebody-else")
            page.click("button:has-text('Approve')")
            expect(page.locator("p.error")).to_contain_text("does not match")
            page.go_back()
            page.fill("#confirm-fingerprint", node.peer.fingerprint)
            page.click("button:has-text('Approve')")
            expect(page.locator(f"#peers-approved tr[data-peer='{node.peer.id}']")).to_be_visible()
            page.screenshot(path=shots / "peers.png", full_page=True)
            page.locator(
                f"#peers-approved tr[data-peer='{node.peer.id}'] button:has-text('Revoke')"
            ).click()
            expect(page.locator(f"#peers-revoked tr[data-peer='{node.peer.id}']")).to_be_visible()

            # The audit log shows both, decrypted; the date picker and event filter narrow it.
            page.goto(node.base_url + "/logs")
            expect(page.locator("#audit")).to_contain_text("peer_approved")
            page.fill("#log-date", datetime.now(UTC).date().isoformat())
            page.select_option("select[name=event]", "peer_revoked")
            page.click("button:has-text('Show')")
            expect(page.locator("#audit tbody tr")).to_have_count(1)
            expect(page.locator("#audit")).to_contain_text(node.peer.id)
            page.goto(node.base_url + "/logs")
            page.screenshot(path=shots / "logs.png", full_page=True)

            page.goto(node.base_url + "/settings")
            expect(page.locator("#keys tbody tr")).to_have_count(3)
            page.screenshot(path=shots / "settings.png", full_page=True)

            # Requests with the session but a bad CSRF token are refused, from the API and a form.
            api = context.request
            refused = api.post(
                node.base_url + "/api/admin/indicators",
                data={"value": "x.example"},
                headers={"X-CSRF-Token": "forged"},
            )
            assert refused.status == 403
            forged = api.post(
                node.base_url + "/indicators", form={"value": "x.example", "csrf_token": "forged"}
            )
            assert forged.status == 403
            assert api.get(node.base_url + "/api/admin/overview").status == 200

            # Phone width: nothing wider than the screen, the menu still reachable.
            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, storage_state=context.storage_state()
            )
            mobile = phone.new_page()
            mobile.goto(node.base_url + "/indicators")
            assert mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            expect(mobile.get_by_role("link", name="Peers")).to_be_visible()
            mobile.screenshot(path=shots / "indicators-phone.png")
            mobile.goto(node.base_url + "/")
            assert mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            mobile.screenshot(path=shots / "overview-phone.png")
            phone.close()

            # Log out: the session is gone for pages and the API alike.
            page.goto(node.base_url + "/")
            page.click("button:has-text('Log out')")
            expect(page).to_have_url(node.base_url + "/login")
            assert api.get(node.base_url + "/api/admin/overview").status == 401
            page.goto(node.base_url + "/settings")
            expect(page).to_have_url(node.base_url + "/login?next=%2Fsettings")

            # A fresh browser without any session is refused too.
            stranger = browser.new_context()
            assert stranger.request.get(node.base_url + "/api/admin/peers").status == 401
            post = stranger.request.post(
                node.base_url + "/api/admin/peers", data={"endpoint": "https://x.example"}
            )
            assert post.status == 401
            stranger.close()
            context.close()
        finally:
            browser.close()
