"""Verdicts on the admin API and the dashboard: the real admin app over httpx (ASGITransport)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from dtim.config import NodeHome
from dtim.crypto.auditlog import AuditLog
from dtim.crypto.identity import load_identity, verify_ed25519
from dtim.crypto.keyring import Keyring
from dtim.gossip.protocol import decode_item
from dtim.gossip.report import Tombstone
from dtim.model import indicator_id
from dtim.model.indicator import VERDICT_FIELD
from dtim.store import Store
from dtim.store.gossip import GossipStore
from tests.web.harness import admin_app, csrf_in, log_in, make_home, seed

GREEN = "evil.example"
AMBER = "198.51.100.0"


@dataclass
class Node:
    """A logged-in admin client and what it runs on."""

    client: httpx.AsyncClient
    csrf: str
    home: NodeHome
    store: Store


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    home = make_home(tmp_path / "node")
    store = Store(home.database_url)
    await store.connect()
    try:
        await seed(home, store)
        transport = httpx.ASGITransport(app=admin_app(home, store))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await log_in(client)).status_code == 303
            page = await client.get("/")
            yield Node(client, csrf_in(page.text), home, store)
    finally:
        await store.close()


async def post_verdict(node: Node, ident: str, body: object) -> httpx.Response:
    return await node.client.post(
        f"/api/admin/indicators/{ident}/verdict", json=body, headers={"X-CSRF-Token": node.csrf}
    )


async def test_false_positive_is_recorded_and_a_signed_tombstone_is_stored(node: Node) -> None:
    ident = indicator_id("domain", GREEN)
    response = await post_verdict(
        node, ident, {"verdict": "false-positive", "reason": "our marketing domain"}
    )
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["verdict"] == "false_positive"
    assert done["shared"] is True
    assert done["confidence"] == 0
    assert done["id"] == ident

    detail = (await node.client.get(f"/api/admin/indicators/{ident}")).json()
    assert detail["indicator"]["confidence"] == 0
    assert detail["indicator"]["scope"] == "local"
    assert detail["indicator"]["custom_fields"][VERDICT_FIELD]["reason"] == "our marketing domain"
    assert detail["confidence_now"] == 0
    assert detail["history"][0]["action"] == "verdict"

    stored = await GossipStore(node.store).items_for([ident], 0)
    assert [row.item_id.hex() for row in stored] == [done["tombstone"]]
    tombstone = decode_item(orjson.loads(stored[0].body))
    assert isinstance(tombstone, Tombstone)
    identity = load_identity(node.home.keys_dir)
    assert tombstone.issuer == identity.node_id
    verify_ed25519(
        identity.public_key_b64, base64.b64decode(tombstone.signature), tombstone.signed_payload()
    )

    log = AuditLog(node.home.encrypted_logs, Keyring.load(node.home.keys_dir))
    events = [r for day in log.days() for r in log.read(day) if r["event"] == "indicator_verdict"]
    assert events == [
        {
            **events[0],
            "indicator": ident,
            "verdict": "false_positive",
            "tombstone": done["tombstone"],
        }
    ]
    assert GREEN not in str(events)  # ids only, never the value


async def test_verdicts_on_amber_indicators_stay_local(node: Node) -> None:
    ident = indicator_id("ipv4", AMBER)
    response = await post_verdict(node, ident, {"verdict": "revoked"})
    assert response.status_code == 200
    assert response.json()["shared"] is False
    assert "AMBER" in response.json()["withheld"]
    assert await GossipStore(node.store).items_for([ident], 0) == []


async def test_confirmed_pins_the_chosen_confidence(node: Node) -> None:
    ident = indicator_id("domain", GREEN)
    response = await post_verdict(node, ident, {"verdict": "confirmed", "confidence": 90})
    assert response.status_code == 200
    assert response.json()["confidence"] == 90
    assert response.json()["tombstone"] is None


async def test_bad_requests_are_json_4xx_and_change_nothing(node: Node) -> None:
    ident = indicator_id("domain", GREEN)
    unknown = await post_verdict(
        node, "0b5e53b5-0000-5000-8000-000000000000", {"verdict": "revoked"}
    )
    assert unknown.status_code == 404
    assert "no indicator" in unknown.json()["error"]
    bad = await post_verdict(node, ident, {"verdict": "benign"})
    assert bad.status_code == 400
    assert bad.json()["field"] == "verdict"
    assert "unknown verdict" in bad.json()["error"]
    too_sure = await post_verdict(node, ident, {"verdict": "confirmed", "confidence": 101})
    assert too_sure.status_code == 400
    assert too_sure.json()["field"] == "confidence"
    wordy = await post_verdict(node, ident, {"verdict": "revoked", "reason": "x" * 501})
    assert wordy.status_code == 400
    assert wordy.json()["field"] == "reason"
    missing = await post_verdict(node, ident, {})
    assert missing.status_code == 400
    assert "error" in missing.json()
    no_csrf = await node.client.post(
        f"/api/admin/indicators/{ident}/verdict", json={"verdict": "revoked"}
    )
    assert no_csrf.status_code == 403
    indicator = await node.store.get_indicator(ident)
    assert indicator is not None
    assert indicator.confidence == 85
    assert VERDICT_FIELD not in indicator.custom_fields
    assert await GossipStore(node.store).items_for([ident], 0) == []


async def test_the_indicator_page_records_a_verdict_with_its_csrf_token(node: Node) -> None:
    ident = indicator_id("domain", GREEN)
    page = await node.client.get(f"/indicators/{ident}")
    assert f'action="/indicators/{ident}/verdict"' in page.text
    forged = await node.client.post(
        f"/indicators/{ident}/verdict", data={"verdict": "revoked", "csrf_token": "forged"}
    )
    assert forged.status_code == 403
    posted = await node.client.post(
        f"/indicators/{ident}/verdict",
        data={"verdict": "revoked", "reason": "sinkholed", "csrf_token": csrf_in(page.text)},
    )
    assert posted.status_code == 303
    assert "tombstone" in posted.headers["location"]
    shown = await node.client.get(f"/indicators/{ident}")
    assert 'id="verdict-now"' in shown.text
    assert "revoked" in shown.text
    assert "sinkholed" in shown.text
