"""DTIM request/response signatures: every rejection reason, in process."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dtim.crypto.identity import NodeIdentity
from dtim.crypto.nonces import MemoryNonceCache
from dtim.crypto.signatures import (
    MessageSigner,
    PeerKey,
    RequestVerifier,
    StaticPeerKeys,
    verify_response,
)
from dtim.errors import SignatureError
from dtim.model.clock import FakeClock
from dtim.model.peer import PeerStatus

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BODY = b'{"indicators": []}'


class Pair:
    """A sender, a receiver, and the receiver's verifier."""

    def __init__(self) -> None:
        self.clock = FakeClock(START)
        self.sender = NodeIdentity.generate()
        self.receiver = NodeIdentity.generate()
        self.keys = StaticPeerKeys(
            [PeerKey(self.sender.node_id, self.sender.public_key_b64, PeerStatus.APPROVED)]
        )
        self.signer = MessageSigner(self.sender, clock=self.clock)
        self.verifier = RequestVerifier(self.receiver.node_id, self.keys, clock=self.clock)

    def sign(self, body: bytes = BODY, recipient: str | None = None) -> list[tuple[str, str]]:
        signed = self.signer.sign_request(
            method="post",
            path="/api/v1/indicators/gossip",
            query="a=1",
            body=body,
            recipient=recipient or self.receiver.node_id,
        )
        return [("content-type", "application/json"), *signed.headers]

    async def verify(
        self, headers: list[tuple[str, str]], body: bytes = BODY, query: str = "a=1"
    ) -> str:
        verified = await self.verifier.verify(
            method="POST", path="/api/v1/indicators/gossip", query=query, headers=headers, body=body
        )
        return verified.key_id


@pytest.fixture
def pair() -> Pair:
    return Pair()


def replace(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [(k, value if k == name else v) for k, v in headers]


def drop(headers: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k != name]


async def test_valid_request_verifies(pair: Pair) -> None:
    headers = pair.sign()
    assert await pair.verify(headers) == pair.sender.node_id
    names = [k for k, _ in headers]
    assert names[1:] == ["content-digest", "dtim-recipient", "signature-input", "signature"]
    sig_input = dict(headers)["signature-input"]
    assert sig_input.startswith(
        'dtim=("@method" "@path" "@query" "content-digest" "dtim-recipient");created='
    )
    assert 'alg="ed25519";tag="dtim-request"' in sig_input


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: drop(h, "signature"), "missing signature"),
        (lambda h: drop(h, "signature-input"), "missing signature"),
        (lambda h: replace(h, "signature", "dtim=notbytes"), "malformed signature"),
        (lambda h: replace(h, "signature", "dtim=:AAAA:"), "malformed signature: not a 64-byte"),
        (lambda h: replace(h, "signature-input", "other=()"), "missing signature: no 'dtim'"),
        (lambda h: replace(h, "signature-input", 'dtim=("@method");created=1'), "malformed"),
        (lambda h: replace(h, "dtim-recipient", "f" * 64), "wrong recipient"),
        (lambda h: replace(h, "content-digest", "sha-256=:AAAA:"), "content digest mismatch"),
    ],
)
async def test_rejections(pair: Pair, mutate, reason: str) -> None:  # type: ignore[no-untyped-def]  # lambdas
    with pytest.raises(SignatureError, match=reason):
        await pair.verify(mutate(pair.sign()))


async def test_tampered_body_path_and_query(pair: Pair) -> None:
    headers = pair.sign()
    with pytest.raises(SignatureError, match="content digest mismatch"):
        await pair.verify(headers, body=BODY + b" ")
    with pytest.raises(SignatureError, match="bad signature"):
        await pair.verify(headers, query="a=2")
    with pytest.raises(SignatureError, match="bad signature"):
        await pair.verifier.verify(
            method="PUT", path="/api/v1/indicators/gossip", query="a=1", headers=headers, body=BODY
        )


async def test_signature_params_are_covered(pair: Pair) -> None:
    headers = pair.sign()
    sig_input = dict(headers)["signature-input"]
    nonce = sig_input.split('nonce="')[1].split('"')[0]
    forged = replace(headers, "signature-input", sig_input.replace(nonce, "x" * 24))
    with pytest.raises(SignatureError, match="bad signature"):
        await pair.verify(forged)


async def test_wrong_algorithm_and_tag(pair: Pair) -> None:
    headers = pair.sign()
    sig_input = dict(headers)["signature-input"]
    with pytest.raises(SignatureError, match="unsupported algorithm"):
        await pair.verify(
            replace(headers, "signature-input", sig_input.replace("ed25519", "hmac-sha256"))
        )
    with pytest.raises(SignatureError, match="tag must be"):
        await pair.verify(
            replace(headers, "signature-input", sig_input.replace("dtim-request", "dtim-response"))
        )


async def test_replay_is_rejected_until_the_window_passes(pair: Pair) -> None:
    headers = pair.sign()
    await pair.verify(headers)
    with pytest.raises(SignatureError, match="nonce replayed"):
        await pair.verify(headers)
    pair.clock.advance(301)
    with pytest.raises(SignatureError, match="timestamp outside window"):
        await pair.verify(headers)


async def test_an_empty_shared_nonce_cache_is_used_not_replaced(pair: Pair) -> None:
    # An empty cache is falsy (it has a length): two verifiers given the same one (two API
    # processes of one node) must still see each other's nonces.
    shared = MemoryNonceCache()
    first = RequestVerifier(pair.receiver.node_id, pair.keys, nonces=shared, clock=pair.clock)
    second = RequestVerifier(pair.receiver.node_id, pair.keys, nonces=shared, clock=pair.clock)
    headers = pair.sign()
    await first.verify(
        method="POST", path="/api/v1/indicators/gossip", query="a=1", headers=headers, body=BODY
    )
    assert len(shared) == 1
    with pytest.raises(SignatureError, match="nonce replayed"):
        await second.verify(
            method="POST", path="/api/v1/indicators/gossip", query="a=1", headers=headers, body=BODY
        )


async def test_timestamp_window_both_ways(pair: Pair) -> None:
    headers = pair.sign()
    pair.clock.advance(-301)
    with pytest.raises(SignatureError, match="timestamp outside window"):
        await pair.verify(headers)
    pair.clock.advance(301 + 299)
    assert await pair.verify(headers)


async def test_expires_is_enforced() -> None:
    pair = Pair()
    pair.signer = MessageSigner(pair.sender, clock=pair.clock, expires_in=10)
    headers = pair.sign()
    pair.clock.advance(11)
    with pytest.raises(SignatureError, match="signature expired"):
        await pair.verify(headers)


async def test_key_status(pair: Pair) -> None:
    stranger = NodeIdentity.generate()
    pair.signer = MessageSigner(stranger, clock=pair.clock)
    with pytest.raises(SignatureError, match="unknown key"):
        await pair.verify(pair.sign())
    pair.keys.set(PeerKey(stranger.node_id, stranger.public_key_b64, PeerStatus.PENDING))
    with pytest.raises(SignatureError, match="key not approved"):
        await pair.verify(pair.sign())
    pair.keys.set(PeerKey(stranger.node_id, stranger.public_key_b64, PeerStatus.APPROVED, "peer-1"))
    verified = await pair.verifier.verify(
        method="POST", path="/api/v1/indicators/gossip", query="a=1", headers=pair.sign(), body=BODY
    )
    assert verified.peer_id == "peer-1"
    pair.keys.revoke(stranger.node_id)
    with pytest.raises(SignatureError, match="key revoked"):
        await pair.verify(pair.sign())
    pair.keys.set(PeerKey(stranger.node_id, "AAAA", PeerStatus.APPROVED))
    with pytest.raises(SignatureError, match="unknown key: stored public key"):
        await pair.verify(pair.sign())


async def test_key_id_must_match_the_signing_key(pair: Pair) -> None:
    # A request signed by one approved key but claiming another approved key's id.
    other = NodeIdentity.generate()
    pair.keys.set(PeerKey(other.node_id, other.public_key_b64, PeerStatus.APPROVED))
    headers = pair.sign()
    sig_input = dict(headers)["signature-input"]
    forged = replace(
        headers, "signature-input", sig_input.replace(pair.sender.node_id, other.node_id)
    )
    with pytest.raises(SignatureError, match="bad signature"):
        await pair.verify(forged)


async def test_nonce_cache_is_bounded_and_fails_closed() -> None:
    cache = MemoryNonceCache(max_entries=2)
    assert await cache.remember("k", "n1", now=0, until=10)
    assert not await cache.remember("k", "n1", now=5, until=15)
    assert await cache.remember("k", "n2", now=5, until=15)
    with pytest.raises(SignatureError, match="replay cache full"):
        await cache.remember("k", "n3", now=6, until=16)
    assert await cache.remember("k", "n3", now=11, until=21)  # n1 expired and was dropped
    assert len(cache) == 2


async def test_response_signature_roundtrip_and_binding(pair: Pair) -> None:
    request = pair.signer.sign_request(
        method="POST", path="/x", query=None, body=BODY, recipient=pair.receiver.node_id
    )
    responder = MessageSigner(pair.receiver, clock=pair.clock)
    response = responder.sign_response(
        status=200,
        body=b'{"status":"ok"}',
        requester=pair.sender.node_id,
        request_signature=request.signature,
    )
    headers = list(response.headers)

    def check(
        status: int = 200,
        body: bytes = b'{"status":"ok"}',
        hdrs: list[tuple[str, str]] = headers,
        bound: bytes = request.signature,
        key: str = pair.receiver.public_key_b64,
    ) -> str:
        return verify_response(
            status=status,
            headers=hdrs,
            body=body,
            responder_public_key=key,
            our_node_id=pair.sender.node_id,
            request_signature=bound,
            now=pair.clock.now(),
        )

    assert check() == pair.receiver.node_id
    assert 'tag="dtim-response"' in dict(headers)["signature-input"]
    with pytest.raises(SignatureError, match="bad signature"):
        check(status=201)
    with pytest.raises(SignatureError, match="content digest mismatch"):
        check(body=b"{}")
    with pytest.raises(SignatureError, match="bad signature"):
        check(bound=bytes(64))
    with pytest.raises(SignatureError, match="bad signature"):
        check(key=pair.sender.public_key_b64)
    with pytest.raises(SignatureError, match="unknown key"):
        check(key="xx")
    with pytest.raises(SignatureError, match="wrong recipient"):
        check(hdrs=replace(headers, "dtim-recipient", "0" * 64))
    with pytest.raises(SignatureError, match="missing signature"):
        check(hdrs=drop(headers, "signature"))
    pair.clock.advance(400)
    with pytest.raises(SignatureError, match="timestamp outside window"):
        check()
