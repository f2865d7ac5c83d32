"""End to end in headless Chromium against real ``dtim node run`` processes on 127.0.0.1.

Two nodes from ``dtim init`` homes gossip in 2-second rounds. B approved A; A
learnt B by ``dtim peers add`` and holds it pending. In A's dashboard
the admin logs in with the password ``dtim init --json`` printed, sees the charts,
searches, approves B (confirming its fingerprint), watches B's indicator arrive,
revokes B, reads the audit log and logs out; requests without a session or with a
forged CSRF token are refused by the same node. Every process is killed at the end,
and by a watchdog if the test runs past its hard stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from dtim.config import NodeHome, load_settings
from dtim.service import peers_command
from tests.mesh.cluster import (
    CLI,
    FORMATION,
    Mesh,
    MeshNode,
    dtim,
    indicators,
    init_homes,
    public_ips,
    stop_all,
)
from tests.web.harness import csrf_in

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="headless browser tests need /usr/bin/chromium (apt-get install -y chromium)",
    ),
    pytest.mark.timeout(240),
]
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
HARD_STOP = 150.0
"""Seconds after which the watchdog kills both nodes, whatever the test is doing."""
GOSSIP = 30.0
"""Seconds allowed for an indicator to cross the new link (a few 2-second rounds and slack)."""
B_VALUE, *A_VALUES = public_ips(6, start=3000)
"""B's indicator (must reach A once approved), then A's own."""


@dataclass(frozen=True)
class Pair:
    """Node A (whose dashboard the browser drives) and node B, both running."""

    mesh: Mesh
    a: MeshNode
    b: MeshNode


def _answers(node: MeshNode) -> bool:
    """Both listeners answer: the admin one is ready and the peer API serves its node document."""
    try:
        ready = httpx.get(node.admin_url + "/readyz", timeout=1).status_code == 200
        info = httpx.get(node.url + "/api/v1/node", timeout=1, verify=False)  # TOFU, as peers add
    except httpx.HTTPError:
        return False
    return ready and info.status_code == 200


def reload_until(page: Any, url: str, condition: Callable[[], bool], what: str, mesh: Mesh) -> None:
    """Load ``url`` again and again until ``condition`` holds on the page (deadline: GOSSIP s).

    Raises:
        AssertionError: it did not hold in time (with ``what`` and the nodes' logs).
    """
    deadline = time.monotonic() + GOSSIP
    while True:
        page.goto(url)
        if condition():
            return
        assert time.monotonic() < deadline, f"not within {GOSSIP:.0f} s: {what}\n{mesh.logs()}"
        page.wait_for_timeout(500)  # between loads of a polled page


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    a, b = init_homes(tmp_path, ["a", "b"])
    mesh = Mesh(tmp_path, [a, b], [a, b])
    done = threading.Event()

    def watch() -> None:
        if not done.wait(HARD_STOP):
            for node in (a, b):
                node.kill()

    threading.Thread(target=watch, name="browser-node-hard-stop", daemon=True).start()
    try:
        for node in (a, b):
            node.start()
        mesh.wait_for(lambda: _answers(a) and _answers(b), "both nodes answer", FORMATION)
        yield Pair(mesh, a, b)
    finally:
        done.set()
        stop_all([a, b])


def _cli(*args: str) -> subprocess.Popen[str]:
    """Start ``dtim`` in a subprocess (the caller waits for it), as :func:`dtim` runs it."""
    return subprocess.Popen(  # our own CLI
        [sys.executable, "-c", CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("DTIM")},
    )


def _finished(process: subprocess.Popen[str]) -> str:
    """The output of a ``dtim`` subprocess; fails the test on a non-zero exit."""
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, f"{process.args[3:]} failed:\n{err}"
    return out


def _link(pair: Pair) -> None:
    """A holds B pending; B approved A; B has an indicator, A a few of its own.

    A's ``dtim peers add`` and B's ``dtim indicators add`` run as CLI processes at
    once; B adds and approves A through the same service call ``dtim peers`` makes
    (in this process: each CLI start costs seconds on a busy machine).
    """
    a, b = pair.a, pair.b
    learn = _cli("peers", "add", b.url, "--home", str(a.home), "--json")
    report = _cli("indicators", "add", "ipv4", B_VALUE, "--confidence", "85", "--home", str(b.home))
    b_home = NodeHome(root=b.home, settings=load_settings(b.home, environ={}).settings)
    asyncio.run(peers_command(b_home, "add", a.url))
    approved = asyncio.run(peers_command(b_home, "approve", a.node_id))
    assert isinstance(approved, dict)
    assert approved["status"] == "approved"
    for n, value in enumerate(A_VALUES):
        a.add(indicators([value], confidence=40 + 12 * n))
    added = json.loads(_finished(learn))
    assert (added["id"], added["status"]) == (b.node_id, "pending")
    _finished(report)


def test_dashboard_of_a_running_node(pair: Pair) -> None:
    a, b = pair.a, pair.b
    _link(pair)
    assert B_VALUE not in a.values(), "B's indicator reached A before A approved B"
    base = a.admin_url
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            context.set_default_timeout(15_000)
            page = context.new_page()

            # Without a session the dashboard sends the browser to the login form.
            page.goto(base + "/")
            expect(page).to_have_url(base + "/login?next=%2F")
            page.fill("#password", a.admin_password)
            page.press("#password", "Enter")
            expect(page).to_have_url(base + "/")

            # Overview: server-side SVG charts with drawn bars, and this node's identity.
            for chart in ("#chart-hourly", "#chart-confidence", "#chart-flow"):
                svg = page.locator(f"{chart} svg")
                expect(svg).to_be_visible()
                box = svg.bounding_box()
                assert box is not None, chart
                assert box["width"] > 100, chart
                assert box["height"] > 50, chart
            expect(page.locator("#chart-hourly svg rect").first).to_be_visible()
            assert page.locator("#chart-confidence svg rect").count() == 10
            assert page.locator("#chart-flow svg rect").count() >= 1
            expect(page.locator("#total")).to_have_text(str(len(A_VALUES)))
            expect(page.locator("main")).to_contain_text(a.node_id)

            # Search: one of A's own indicators by value prefix.
            page.goto(base + "/indicators")
            page.fill("#q", A_VALUES[2])
            page.press("#q", "Enter")
            expect(page.locator("#results tbody tr")).to_have_count(1)
            expect(page.locator("#results")).to_contain_text(A_VALUES[2])

            # B is pending with the fingerprint A fetched from it; approving needs that fingerprint.
            page.goto(base + "/peers")
            pending = page.locator(f"#peers-pending tr[data-peer='{b.node_id}']")
            expect(pending).to_contain_text(b.url)
            pending.get_by_role("link", name="Approve…").click()
            fingerprint = page.locator("#fingerprint").inner_text().strip()
            assert fingerprint.startswith("SHA256:")
            page.fill("#confirm-fingerprint", fingerprint)
            page.click("button:has-text('Approve')")
            approved = page.locator(f"#peers-approved tr[data-peer='{b.node_id}']")
            expect(approved).to_be_visible()

            # B's indicator arrives over the new link; reload until it shows, with a deadline.
            found = page.locator("#results tbody tr", has_text=B_VALUE)
            reload_until(
                page,
                base + "/indicators?" + urlencode({"q": B_VALUE}),
                lambda: found.count() == 1,
                "B's indicator on A's Indicators page",
                pair.mesh,
            )
            found.get_by_role("link", name=B_VALUE).click()
            expect(page.locator("h1")).to_have_text(B_VALUE)
            expect(page.locator("dt:text-is('Sources') + dd")).to_have_text("gossip")
            # A's own indicators went the other way.
            pair.mesh.wait_for(lambda: set(A_VALUES) <= b.values(), "A's indicators on B", GOSSIP)

            # A session A started (not only B's calls) leaves the contact time and the bytes
            # on the Peers page, and the overview shows the gossip health in plain words.
            traffic = approved.locator("td.num").nth(1)
            reload_until(
                page,
                base + "/peers",
                lambda: (
                    re.fullmatch(r"[1-9]\d* / [1-9]\d*", traffic.inner_text().strip()) is not None
                    and "never" not in approved.inner_text()
                ),
                "contact time and bytes exchanged with B on A's Peers page",
                pair.mesh,
            )
            page.goto(base + "/")
            health = page.locator("#gossip-health")
            expect(health).to_contain_text("last round")
            expect(health).to_contain_text(b.node_id[:16] + "…")
            assert not re.search(r"[\[\]{}']|None|True", health.inner_text()), health.inner_text()

            # With the session but a forged CSRF token, revoking is refused (API and form alike).
            api = context.request
            forged = api.post(
                f"{base}/api/admin/peers/{b.node_id}/revoke", headers={"X-CSRF-Token": "forged"}
            )
            assert forged.status == 403
            form = api.post(f"{base}/peers/{b.node_id}/revoke", form={"csrf_token": "forged"})
            assert form.status == 403
            page.goto(base + "/peers")
            expect(approved).to_be_visible()

            # Revoke B.
            approved.locator("button:has-text('Revoke')").click()
            expect(page.locator(f"#peers-revoked tr[data-peer='{b.node_id}']")).to_be_visible()

            # The audit log: approval, sharing with B and revocation, decrypted.
            audit = page.locator("#audit")
            reload_until(
                page,
                base + "/logs?" + urlencode({"event": "indicators_shared"}),
                lambda: audit.locator("tbody tr", has_text=b.node_id).count() > 0,
                "indicators shared with B in A's audit log",
                pair.mesh,
            )
            page.goto(base + "/logs")
            for event in ("peer_added", "peer_approved", "indicators_shared", "peer_revoked"):
                expect(audit).to_contain_text(event)
            page.select_option("select[name=event]", "indicators_shared")
            page.click("button:has-text('Show')")
            expect(audit.locator("tbody tr").first).to_contain_text(b.node_id)

            # Settings: the node's real key files, with ages.
            page.goto(base + "/settings")
            expect(page.locator("#keys tbody tr")).to_have_count(3)

            # Log out: the session is gone for pages and the API alike.
            page.goto(base + "/")
            page.click("button:has-text('Log out')")
            expect(page).to_have_url(base + "/login")
            assert api.get(base + "/api/admin/overview").status == 401

            # A browser without a session: the API answers 401, pages redirect to the login.
            stranger = browser.new_context()
            assert stranger.request.get(base + "/api/admin/peers").status == 401
            post = stranger.request.post(
                f"{base}/api/admin/peers/{b.node_id}/approve",
                data={"fingerprint": fingerprint},
            )
            assert post.status == 401
            redirect = stranger.request.get(base + "/logs", max_redirects=0)
            assert redirect.status in (302, 303, 307)
            assert redirect.headers["location"].startswith("/login")
            stranger.close()
            context.close()
        finally:
            browser.close()
    a_peers = json.loads(dtim("peers", "list", "--json", "--home", str(a.home)).stdout)
    assert {p["id"]: p["status"] for p in a_peers} == {b.node_id: "revoked"}

    # Wrong passwords lock the client out whatever X-Forwarded-For it claims: every
    # client of the loopback listener is 127.0.0.1, from which uvicorn trusts the header
    # by default, so each made-up address used to get five guesses of its own.
    with httpx.Client(base_url=base, timeout=10) as client:
        for attempt in range(5):
            token = csrf_in(client.get("/login").text)
            wrong = client.post(
                "/login",
                data={"password": "not-it", "csrf_token": token, "next": "/"},
                headers={"X-Forwarded-For": f"198.51.100.{attempt}"},
            )
            assert wrong.status_code == 401
        token = csrf_in(client.get("/login").text)
        locked = client.post(
            "/login",
            data={"password": a.admin_password, "csrf_token": token, "next": "/"},
            headers={"X-Forwarded-For": "198.51.100.99"},
        )
        assert locked.status_code == 401
        assert "too many failed logins" in locked.text
