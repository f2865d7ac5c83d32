"""The peer API on a real uvicorn TLS server: mTLS (trusted, untrusted, none), signatures,
the node document, the public feed, JSON errors, 413 and 429, and runtime revocation."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from dtim.api.peer import DEFAULT_BURST, DEFAULT_RATE, build_peer_app
from dtim.crypto.bodysig import sign_body
from dtim.crypto.httpauth import SignedRequestAuth
from dtim.crypto.signatures import MessageSigner, RequestVerifier
from dtim.crypto.tls import client_context
from dtim.errors import PeerRejected
from dtim.gossip.peers import set_status
from dtim.gossip.protocol import MAX_FRAME
from dtim.gossip.transport import fetch_node_info, read_node_document
from dtim.model import PeerStatus
from tests.gossip.localnode import LocalNode, indicator, local_nodes, public_ips, serving

GOSSIP = "/api/v1/indicators/gossip"


@dataclass
class World:
    srv: LocalNode
    alice: LocalNode
    mallory: LocalNode

    def client(self, who: LocalNode | None, *, sign: LocalNode | None = None) -> httpx.AsyncClient:
        """A client presenting ``who``'s certificate (none when None), signing as ``sign``."""
        cert = (who.home.tls_cert, who.home.tls_key) if who is not None else (None, None)
        context = client_context(*cert, trusted_pems=[self.srv.ca_pem])
        auth = None
        if sign is not None:
            auth = SignedRequestAuth(
                MessageSigner(sign.identity),
                recipient=self.srv.id,
                responder_public_key=self.srv.identity.public_key_b64,
            )
        return httpx.AsyncClient(base_url=self.srv.url, verify=context, auth=auth, timeout=10)


@pytest.fixture
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with local_nodes(tmp_path_factory.mktemp("api"), ["srv", "alice", "mallory"]) as nodes:
        srv, alice, mallory = nodes
        await srv.approve(alice)
        await alice.approve(srv)
        yield World(srv, alice, mallory)


def push_body(node: LocalNode, items: list[dict[str, object]]) -> bytes:
    return orjson.dumps(sign_body({"indicators": items}, node.identity))  # type: ignore[dict-item]


async def test_node_document_is_public_and_self_signed(world: World) -> None:
    async with world.client(None) as client:
        response = await client.get("/api/v1/node")
    assert response.status_code == 200
    info = read_node_document(response.json())
    assert (info.id, info.endpoint, info.protocol_version) == (world.srv.id, world.srv.url, 1)
    assert info.ca_certificate == world.srv.ca_pem
    assert (await fetch_node_info(world.srv.url, seconds=5)).id == world.srv.id
    forged = {**response.json(), "endpoint": "https://evil.example:3030"}
    with pytest.raises(PeerRejected, match="bad signature"):
        read_node_document(forged)


async def test_public_feed_serves_only_clear_in_pages_without_a_certificate(world: World) -> None:
    clear = public_ips(5)
    await world.srv.add(*(indicator(v, tlp="clear") for v in clear))
    await world.srv.add(*(indicator(v) for v in public_ips(3, start=50)))  # GREEN
    seen: list[str] = []
    url: str | None = "/api/v1/indicators/public?limit=2"
    async with world.client(None) as client:
        while url is not None:
            response = await client.get(url)
            assert response.status_code == 200
            page = response.json()
            assert len(page) <= 2
            seen += [item["value"] for item in page]
            assert all(item["tlp"] == "clear" for item in page)
            assert set(page[0]) >= {"id", "type", "value", "confidence", "valid_until"}
            link = response.headers.get("link")
            url = link[1 : link.index(">")] if link else None
    assert sorted(seen) == sorted(clear)


async def test_trusted_peer_pushes_signed_reports(world: World) -> None:
    await world.alice.add(indicator("45.155.1.1"))
    index = world.alice.runtime.loop.index
    await world.alice.runtime.loop.publish()
    view = index.view_for(world.srv.id, (), datetime.now(UTC))
    items = [item.to_json() for item in view.items.values()]
    async with world.client(world.alice, sign=world.alice) as client:
        response = await client.post(GOSSIP, content=push_body(world.alice, items))  # type: ignore[arg-type]
        again = await client.post(GOSSIP, content=push_body(world.alice, items))  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "received": 1}
    assert 'tag="dtim-response"' in response.headers["signature-input"]  # signed answer
    assert again.json() == {"status": "ok", "received": 0}  # idempotent
    assert "45.155.1.1" in await world.srv.values()


async def test_untrusted_client_certificate_fails_the_handshake(world: World) -> None:
    async with world.client(world.mallory, sign=world.mallory) as client:
        with pytest.raises(httpx.HTTPError):
            await client.post(GOSSIP, content=push_body(world.mallory, []))


async def test_no_client_certificate_is_401_json(world: World) -> None:
    async with world.client(None, sign=world.alice) as client:
        response = await client.post(GOSSIP, content=push_body(world.alice, []))
    assert response.status_code == 401
    assert response.json() == {
        "error": "client certificate rejected",
        "reason": "no client certificate presented",
    }


async def test_signature_failures_are_401_json(world: World) -> None:
    async with world.client(world.alice) as unsigned:
        response = await unsigned.post(GOSSIP, content=push_body(world.alice, []))
    assert response.status_code == 401
    assert response.json() == {"error": "signature rejected", "reason": "missing signature"}

    async with world.client(world.alice, sign=world.mallory) as impostor:
        response = await impostor.post(GOSSIP, content=push_body(world.mallory, []))
    assert response.status_code == 401
    assert response.json()["reason"] == "unknown key"

    body = orjson.dumps({"indicators": [], "signature": "AAAA" * 22})
    async with world.client(world.alice, sign=world.alice) as client:
        response = await client.post(GOSSIP, content=body)
    assert response.status_code == 401
    assert response.json()["error"] == "signature rejected"
    assert "body" in response.json()["reason"]


async def test_bodies_over_the_limits_get_413(world: World) -> None:
    limit = world.srv.home.settings.network.max_body_bytes
    async with world.client(world.alice, sign=world.alice) as client:
        response = await client.post(GOSSIP, content=b"x" * (limit + 1))
        assert response.status_code == 413
        assert response.json()["error"] == "body too large"
        frame = push_body(world.alice, [{"padding": "x" * (MAX_FRAME + 10)}])
        response = await client.post(GOSSIP, content=frame)
        assert response.status_code == 413
        assert "64" in response.json()["reason"] or str(MAX_FRAME) in response.json()["reason"]


async def test_a_peer_sending_too_fast_gets_429(world: World) -> None:
    runtime = world.srv.runtime
    app = build_peer_app(
        runtime.api,
        trust=runtime.trust,
        verifier=RequestVerifier(world.srv.id, runtime.directory),
        signer=MessageSigner(world.srv.identity),
        max_body_bytes=1 << 20,
        rate=0.01,
        burst=3,
    )
    async with serving(app, runtime.trust.listener_context()) as url:
        context = client_context(
            world.alice.home.tls_cert, world.alice.home.tls_key, trusted_pems=[world.srv.ca_pem]
        )
        async with httpx.AsyncClient(base_url=url, verify=context) as client:
            codes = [(await client.get("/api/v1/nope")).status_code for _ in range(4)]
            refused = await client.get("/api/v1/nope")
    assert codes[:3] == [401, 401, 401]  # unsigned, but within the budget
    assert codes[3] == 429
    assert refused.json() == {"error": "rate limited", "reason": refused.json()["reason"]}
    assert int(refused.headers["retry-after"]) >= 1


async def test_made_up_forwarded_addresses_share_the_callers_rate_limit(world: World) -> None:
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told not to: each made-up
    # address would then get a bucket of its own and no public request would be refused.
    loop = asyncio.get_running_loop()
    started = loop.time()
    codes: list[int] = []
    async with world.client(None) as client:
        # The most the bucket can allow by now (burst, plus the rate since the start) and
        # a margin: past it, every request was let through.
        while (allowed := DEFAULT_BURST + DEFAULT_RATE * (loop.time() - started) + 20) > len(codes):
            response = await client.get(
                "/api/v1/node", headers={"X-Forwarded-For": f"198.51.100.{len(codes) % 250}"}
            )
            codes.append(response.status_code)
            if response.status_code == 429:
                break
    assert codes[-1] == 429, f"{len(codes)} requests let through, at most {allowed:.0f} allowed"
    assert codes[:-1] == [200] * (len(codes) - 1)


async def test_errors_are_json(world: World) -> None:
    async with world.client(world.alice, sign=world.alice) as client:
        missing = await client.get("/api/v1/nope")
        bad_json = await client.post(GOSSIP, content=b"{not json")
        bad_session = await client.post("/api/v1/gossip/reconcile?session=XYZ", content=b"\x01")
        bad_message = await client.post(
            "/api/v1/gossip/reconcile?session=" + "ab" * 16, content=b"\x07\x00"
        )
    assert missing.status_code == 404
    assert missing.json()["error"] == "not found"
    assert bad_json.status_code == 400
    assert bad_json.json()["error"] == "protocol error"
    assert bad_session.status_code == 422
    assert bad_session.json()["error"] == "invalid request"
    assert bad_message.status_code == 400
    assert "version" in bad_message.json()["reason"]


async def test_revocation_applies_to_an_open_connection_without_restart(world: World) -> None:
    async with world.client(world.alice, sign=world.alice) as client:
        first = await client.post(GOSSIP, content=push_body(world.alice, []))
        assert first.status_code == 200
        await set_status(
            world.srv.store,
            world.srv.runtime.items,
            world.alice.id,
            PeerStatus.REVOKED,
            now=datetime.now(UTC),
        )
        await world.srv.runtime.directory.refresh(force=True)
        try:
            refused = await client.post(GOSSIP, content=push_body(world.alice, []))
        except (httpx.HTTPError, ssl.SSLError):
            return  # the connection was dropped: refused as well
    assert refused.status_code == 401


async def test_openapi_is_generated_and_public(world: World) -> None:
    async with world.client(None) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert paths >= {
        "/api/v1/node",
        "/api/v1/indicators/public",
        "/api/v1/indicators/gossip",
        "/api/v1/gossip/reconcile",
        "/api/v1/gossip/pull",
    }


async def test_public_feed_cursor_past_64_bits_is_422_not_500(world: World) -> None:
    async with world.client(None) as client:
        response = await client.get("/api/v1/indicators/public", params={"after": 2**64})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"
    assert response.json()["reason"].startswith("query.after")
