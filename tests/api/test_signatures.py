"""Signed requests through the ASGI guards on a real uvicorn server with real mTLS."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dtim.api.mtls import PeerCertificateGuard
from dtim.api.signatures import PEER_STATE_KEY, SignatureGuard
from dtim.crypto.auditlog import AuditLog
from dtim.crypto.httpauth import SignedRequestAuth
from dtim.crypto.identity import NodeIdentity, create_identity
from dtim.crypto.keyring import Keyring
from dtim.crypto.signatures import MessageSigner, PeerKey, RequestVerifier, StaticPeerKeys
from dtim.crypto.tls import PeerTrust, client_context, issue_node_certificates
from dtim.errors import SignatureError
from dtim.model.clock import FakeClock
from dtim.model.peer import PeerStatus
from tests.servers import RunningServer, running_server

PATH = "/api/v1/indicators/gossip"
BODY = b'{"indicators": [{"type": "ipv4", "value": "203.0.113.9"}]}'


@dataclass(frozen=True)
class Node:
    home: Path
    identity: NodeIdentity

    @property
    def certs(self) -> Path:
        return self.home / "certs"

    @property
    def ca_pem(self) -> str:
        return (self.certs / "ca.crt").read_text()

    def tls_to(self, other: Node) -> httpx.AsyncClient:
        ctx = client_context(
            self.certs / "node.crt", self.certs / "node.key", trusted_pems=[other.ca_pem]
        )
        return httpx.AsyncClient(verify=ctx, timeout=10)


def make_node(root: Path, name: str) -> Node:
    home = root / name
    identity = create_identity(home / "keys")
    issue_node_certificates(home / "certs", [], now=datetime.now(UTC), common_name=identity.node_id)
    return Node(home, identity)


@dataclass
class World:
    server: Node
    alice: Node
    bob: Node
    mallory: Node
    keys: StaticPeerKeys
    trust: PeerTrust
    audit: AuditLog
    srv: RunningServer

    @property
    def url(self) -> str:
        return self.srv.url(PATH)


async def gossip(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {"status": "ok", "received": len(body), "peer": request.state._state.get(PEER_STATE_KEY)}
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("nodes")
    server, alice, bob, mallory = (
        make_node(root, n) for n in ("server", "alice", "bob", "mallory")
    )
    keys = StaticPeerKeys(
        [
            PeerKey(n.identity.node_id, n.identity.public_key_b64, PeerStatus.APPROVED)
            for n in (alice, bob)
        ]
    )
    trust = PeerTrust(
        server.certs / "node.crt",
        server.certs / "node.key",
        {alice.identity.node_id: [alice.ca_pem], bob.identity.node_id: [bob.ca_pem]},
    )
    audit = AuditLog(
        server.home / "data" / "logs", Keyring.create(server.home / "keys", now=datetime.now(UTC))
    )
    inner = Starlette(routes=[Route(PATH, gossip, methods=["POST", "GET"])])
    verifier = RequestVerifier(server.identity.node_id, keys)
    guarded = SignatureGuard(
        inner,
        verifier,
        signer=MessageSigner(server.identity),
        max_body_bytes=64 * 1024,
        audit=audit,
        bind_tls_peer=True,
    )
    app = PeerCertificateGuard(guarded, trust)
    with running_server(app, ssl_context=trust.listener_context()) as srv:
        yield World(server, alice, bob, mallory, keys, trust, audit, srv)
    audit.close()


def auth(
    world: World, sender: Node, *, clock: FakeClock | None = None, recipient: str | None = None
) -> SignedRequestAuth:
    return SignedRequestAuth(
        MessageSigner(sender.identity, clock=clock),
        recipient=recipient or world.server.identity.node_id,
        responder_public_key=world.server.identity.public_key_b64,
    )


def signed_headers(world: World, sender: Node, body: bytes = BODY) -> dict[str, str]:
    signed = MessageSigner(sender.identity).sign_request(
        method="POST", path=PATH, query="", body=body, recipient=world.server.identity.node_id
    )
    return dict(signed.headers)


async def test_signed_request_and_signed_response(world: World) -> None:
    async with world.alice.tls_to(world.server) as client:
        response = await client.post(world.url, content=BODY, auth=auth(world, world.alice))
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "received": len(BODY),
        "peer": world.alice.identity.node_id,
    }
    assert response.headers["dtim-recipient"] == world.alice.identity.node_id
    assert 'tag="dtim-response"' in response.headers["signature-input"]


async def test_query_and_get_are_signed_too(world: World) -> None:
    async with world.alice.tls_to(world.server) as client:
        response = await client.get(
            world.url,
            params={"since": "2026-01-01T00:00:00Z", "x": "a b"},
            auth=auth(world, world.alice),
        )
    assert response.status_code == 200


async def test_forged_response_is_detected_by_the_client(world: World) -> None:
    wrong = SignedRequestAuth(
        MessageSigner(world.alice.identity),
        recipient=world.server.identity.node_id,
        responder_public_key=world.bob.identity.public_key_b64,
    )
    async with world.alice.tls_to(world.server) as client:
        with pytest.raises(SignatureError, match="bad signature"):
            await client.post(world.url, content=BODY, auth=wrong)


async def test_tampered_body(world: World) -> None:
    headers = signed_headers(world, world.alice)
    async with world.alice.tls_to(world.server) as client:
        response = await client.post(world.url, content=BODY.replace(b"9", b"8"), headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "signature rejected",
        "reason": "content digest mismatch: the body is not what was signed",
    }


async def test_replayed_request(world: World) -> None:
    headers = signed_headers(world, world.alice)
    async with world.alice.tls_to(world.server) as client:
        assert (await client.post(world.url, content=BODY, headers=headers)).status_code == 200
        replay = await client.post(world.url, content=BODY, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["reason"].startswith("nonce replayed")


async def test_expired_timestamp(world: World) -> None:
    old = FakeClock(datetime.now(UTC) - timedelta(minutes=10))
    async with world.alice.tls_to(world.server) as client:
        response = await client.post(
            world.url, content=BODY, auth=auth(world, world.alice, clock=old)
        )
    assert response.status_code == 401
    assert response.json()["reason"].startswith("timestamp outside window")


async def test_wrong_recipient(world: World) -> None:
    async with world.alice.tls_to(world.server) as client:
        response = await client.post(
            world.url,
            content=BODY,
            auth=auth(world, world.alice, recipient=world.bob.identity.node_id),
        )
    assert response.status_code == 401
    assert response.json()["reason"].startswith("wrong recipient")


async def test_unknown_key(world: World) -> None:
    stranger = Node(world.alice.home, NodeIdentity.generate())  # alice's TLS, unknown signing key
    async with world.alice.tls_to(world.server) as client:
        response = await client.post(world.url, content=BODY, auth=auth(world, stranger))
    assert response.status_code == 401
    assert response.json()["reason"] == "unknown key"


async def test_revoked_key_takes_effect_on_the_next_request(world: World) -> None:
    bob_id = world.bob.identity.node_id
    try:
        async with world.bob.tls_to(world.server) as client:
            assert (
                await client.post(world.url, content=BODY, auth=auth(world, world.bob))
            ).status_code == 200
            world.keys.revoke(bob_id)
            response = await client.post(world.url, content=BODY, auth=auth(world, world.bob))
            assert response.status_code == 401
            assert response.json()["reason"] == "key revoked"
    finally:
        world.keys.set(PeerKey(bob_id, world.bob.identity.public_key_b64, PeerStatus.APPROVED))


async def test_signature_must_match_the_client_certificate(world: World) -> None:
    async with world.bob.tls_to(world.server) as client:  # bob's certificate, alice's signature
        response = await client.post(world.url, content=BODY, auth=auth(world, world.alice))
    assert response.status_code == 401
    assert "client certificate" in response.json()["reason"]


async def test_no_client_certificate(world: World) -> None:
    ctx = client_context(None, None, trusted_pems=[world.server.ca_pem])
    async with httpx.AsyncClient(verify=ctx) as client:
        response = await client.post(world.url, content=BODY, auth=auth(world, world.alice))
    assert response.status_code == 401
    assert response.json() == {
        "error": "client certificate rejected",
        "reason": "no client certificate presented",
    }


async def test_wrong_client_certificate(world: World) -> None:
    async with world.mallory.tls_to(world.server) as client:
        with pytest.raises(httpx.TransportError):
            await client.post(world.url, content=BODY, auth=auth(world, world.alice))


async def test_missing_signature_and_oversized_body(world: World) -> None:
    async with world.alice.tls_to(world.server) as client:
        unsigned = await client.post(world.url, content=BODY)
        assert unsigned.status_code == 401
        assert unsigned.json()["reason"] == "missing signature"
        big = b"x" * (64 * 1024 + 1)
        too_big = await client.post(world.url, content=big, auth=auth(world, world.alice))
        assert too_big.status_code == 413
        assert too_big.json()["error"] == "body too large"


async def test_rejections_are_audited_without_secrets(
    world: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    async with world.alice.tls_to(world.server) as client:
        response = await client.post(
            world.url, content=BODY, auth=auth(world, world.alice, recipient="0" * 64)
        )
    assert response.status_code == 401
    records = world.audit.read(datetime.now(UTC).date())
    rejected = [r for r in records if r["event"] == "request_rejected"]
    assert any(
        str(r["reason"]).startswith("wrong recipient")
        and r["key_id"] == world.alice.identity.node_id
        for r in rejected
    )
    out, err = capfd.readouterr()
    texts = [out, err, caplog.text, response.text, *(str(r) for r in records)]
    secrets = []
    for node in (world.server, world.alice):
        for name in ("keys/identity.key", "certs/node.key", "certs/ca.key"):
            pem_lines = (node.home / name).read_text().splitlines()[1:-1]
            secrets += [line for line in pem_lines if len(line) > 16]
    keyring_text = (world.server.home / "keys" / "keyring").read_text()
    secrets += [part.split('"')[0] for part in keyring_text.split('"secret": "')[1:]]
    assert secrets
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "PRIVATE KEY" not in text
    assert "wrong recipient" in response.text
