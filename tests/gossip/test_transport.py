"""Edge cases of the HTTPS transport with ``httpx.MockTransport``: timeouts, refusals, 5xx,
forged or malformed replies; frames and node documents."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from dtim.crypto.bodysig import sign_body, verify_body
from dtim.crypto.identity import NodeIdentity, create_identity
from dtim.crypto.signatures import MessageSigner
from dtim.crypto.tls import issue_node_certificates
from dtim.errors import PeerRejected, PeerUnreachable, ProtocolError
from dtim.gossip.protocol import MAX_FRAME
from dtim.gossip.transport import (
    HttpTransport,
    decode_push,
    node_document,
    push_frames,
    read_node_document,
)
from dtim.model import Peer, PeerId, PeerStatus, SystemClock
from tests.gossip.reports import make_report

Handler = Callable[[httpx.Request], httpx.Response]
Us = tuple[NodeIdentity, Path]
Them = tuple[NodeIdentity, Peer, str]


@pytest.fixture
def us(tmp_path: Path) -> Us:
    identity = create_identity(tmp_path / "us" / "keys")
    issue_node_certificates(tmp_path / "us" / "certs", [], now=datetime.now(UTC))
    return identity, tmp_path / "us" / "certs"


@pytest.fixture
def them(tmp_path: Path) -> Them:
    identity = create_identity(tmp_path / "them" / "keys")
    files = issue_node_certificates(tmp_path / "them" / "certs", [], now=datetime.now(UTC))
    peer = Peer(
        id=PeerId(identity.node_id),
        endpoint="https://peer.example:3030",
        public_key=identity.public_key_b64,
        fingerprint=identity.fingerprint,
        status=PeerStatus.APPROVED,
        added_at=datetime.now(UTC),
    )
    return identity, peer, files.ca_cert.read_text()


def transport(us: Us, them: Them, handler: Handler) -> HttpTransport:
    identity, certs = us
    return HttpTransport(
        identity,
        certs / "node.crt",
        certs / "node.key",
        pins=lambda peer_id: them[2] if peer_id == them[1].id else None,
        timeout=1.0,
        clock=SystemClock(),
        network=httpx.MockTransport(handler),
    )


def answer(them: Them, body: bytes, request: httpx.Request) -> httpx.Response:
    """:func:`signed` with the body first (for ``functools.partial``)."""
    return signed(them, request, body)


def signed(them: Them, request: httpx.Request, body: bytes) -> httpx.Response:
    """The peer's properly signed 200 answer to ``request``."""
    signature = request.headers["signature"].split("=:", 1)[1].rstrip(":")
    headers = MessageSigner(them[0]).sign_response(
        status=200,
        body=body,
        requester=request.headers["signature-input"].split('keyid="')[1].split('"')[0],
        request_signature=base64.b64decode(signature),
    )
    return httpx.Response(200, content=body, headers=list(headers.headers))


async def test_a_signed_reply_passes_and_a_forged_one_is_refused(us: Us, them: Them) -> None:
    good = transport(us, them, lambda r: signed(them, r, b"\x01\x00"))
    assert await good.reconcile(them[1], "ab" * 16, b"\x01\x01") == b"\x01\x00"
    forged = transport(us, them, lambda r: httpx.Response(200, content=b"\x01\x00"))
    with pytest.raises(PeerRejected, match="response signature"):
        await forged.reconcile(them[1], "ab" * 16, b"\x01\x01")
    await good.close()
    await forged.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, PeerRejected),
        (403, PeerRejected),
        (429, PeerUnreachable),
        (503, PeerUnreachable),
        (400, ProtocolError),
        (413, ProtocolError),
    ],
)
async def test_refusals_map_to_gossip_errors(
    us: Us, them: Them, status: int, error: type[Exception]
) -> None:
    reply = orjson.dumps({"error": "nope", "reason": "because"})
    link = transport(us, them, lambda r: httpx.Response(status, content=reply))
    with pytest.raises(error, match="because"):
        await link.reconcile(them[1], "ab" * 16, b"\x01")
    await link.close()


async def test_timeouts_and_network_failures_are_unreachable(us: Us, them: Them) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler in (slow, down):
        link = transport(us, them, handler)
        with pytest.raises(PeerUnreachable):
            await link.pull(them[1], "ab" * 16)
        await link.close()


async def test_malformed_and_oversized_replies_are_protocol_errors(us: Us, them: Them) -> None:
    for body, what in ((b"[]", "batch"), (b"x" * (MAX_FRAME + 1), "larger")):
        link = transport(us, them, functools.partial(answer, them, body))
        with pytest.raises(ProtocolError, match=what):
            await link.pull(them[1], "ab" * 16)
        await link.close()
    no_count = transport(us, them, lambda r: signed(them, r, b'{"status": "ok"}'))
    with pytest.raises(ProtocolError, match="received"):
        await no_count.push(them[1], [make_report()])
    await no_count.close()


async def test_a_peer_without_a_pinned_ca_is_not_contacted(us: Us, them: Them) -> None:
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    link = transport(us, them, record)
    stranger = replace(them[1], id=PeerId("f" * 64))
    with pytest.raises(PeerRejected, match="no pinned CA"):
        await link.reconcile(stranger, "ab" * 16, b"\x01")
    assert calls == []
    await link.close()


async def test_pushes_are_signed_frames_of_at_most_64_kib(us: Us, them: Them) -> None:
    reports = [
        make_report(f"45.{155 + i // 65025}.{i // 255 % 255}.{i % 255 + 1}") for i in range(800)
    ]
    frames = push_frames(reports)
    assert len(frames) > 1
    assert sum(len(f) for f in frames) == 800
    bodies: list[bytes] = []

    def accept(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        document = orjson.loads(request.content)
        verify_body(document, us[0].public_key_b64)
        items, stem = decode_push(document)
        assert not stem
        return signed(them, request, orjson.dumps({"status": "ok", "received": len(items)}))

    link = transport(us, them, accept)
    assert await link.push(them[1], reports) == 800
    await link.close()
    assert len(bodies) == len(frames)
    assert all(len(body) <= MAX_FRAME for body in bodies)


def test_push_bodies_are_checked() -> None:
    with pytest.raises(ProtocolError, match="indicators"):
        decode_push({"items": []})
    with pytest.raises(ProtocolError, match="unknown fields"):
        decode_push({"indicators": [], "extra": 1})
    with pytest.raises(ProtocolError, match=r"indicators\[0\]"):
        decode_push({"indicators": [{"v": 1, "kind": "report"}]})
    items, stem = decode_push({"indicators": [make_report().to_json()], "stem": True})
    assert len(items) == 1
    assert stem


def test_node_documents_are_checked(tmp_path: Path) -> None:
    identity = create_identity(tmp_path / "keys")
    files = issue_node_certificates(tmp_path / "certs", [], now=datetime.now(UTC))
    ca = files.ca_cert.read_text()
    document = node_document(identity, endpoint="https://n.example:3030", ca_pem=ca, software="x")
    info = read_node_document(document)
    assert info.fingerprint == identity.fingerprint
    with pytest.raises(ProtocolError, match="not a JSON object"):
        read_node_document([])
    with pytest.raises(ProtocolError, match="'endpoint'"):
        read_node_document({**document, "endpoint": ""})
    with pytest.raises(ProtocolError, match="protocol_version"):
        read_node_document({**document, "protocol_version": "1"})
    with pytest.raises(ProtocolError, match="certificate"):
        read_node_document({**document, "ca_certificate": "not a certificate"})
    other = create_identity(tmp_path / "other")
    lying = sign_body({**document, "id": other.node_id}, identity)
    with pytest.raises(ProtocolError, match="id is not the hash"):
        read_node_document(lying)
