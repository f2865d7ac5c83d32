"""Hostile peers: an approved but malicious peer against an honest node running for real.

Three real nodes run in the test's event loop (``tests.gossip.localnode``): the
``honest`` node under test, ``alice`` (an honest peer) and ``mallory`` (approved,
malicious). Every request travels over real mutual TLS with each node's own
certificate and is signed with the sender's own Ed25519 identity. Each case
attacks the honest node and then checks what it holds afterwards: its store,
its gossip views, mallory's reputation, its counters and its audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from dtim.api.deadline import TIMED_OUT_METRIC
from dtim.api.throttle import REFUSED_METRIC
from dtim.crypto.bodysig import sign_body
from dtim.crypto.httpauth import SignedRequestAuth
from dtim.crypto.identity import NodeIdentity
from dtim.crypto.rotation import make_rollover
from dtim.crypto.signatures import MessageSigner
from dtim.crypto.tls import client_context
from dtim.gossip.client import run_session
from dtim.gossip.corroboration import BLOCK_THRESHOLD, reporter_token
from dtim.gossip.inbox import REFUSED_METRIC as ITEMS_REFUSED_METRIC
from dtim.gossip.report import Item, Report
from dtim.gossip.reputation import Reputation
from dtim.gossip.rollover import ROLLOVER_PATH
from dtim.metrics import METRICS
from dtim.model import PeerId, PeerStatus, indicator_id
from dtim.model.indicator import JsonObject
from dtim.model.tlp import Tlp
from dtim.store import IndicatorQuery
from tests.gossip.localnode import LocalNode, indicator, local_nodes, public_ips

GOSSIP = "/api/v1/indicators/gossip"
DEADLINE = 2.0
"""Seconds each request has to arrive (the peer API's keep-alive timeout, shortened here)."""
MALLORY_SECRET = b"mallory-made-up-reporter-secret!"
ALICE_SECRET = b"alice-reporter-secret-0123456789"


@dataclass
class Mesh:
    honest: LocalNode
    alice: LocalNode
    mallory: LocalNode

    @property
    def reputation(self) -> Reputation:
        found = self.honest.runtime.loop.reputation
        assert found is not None
        return found

    def client(self, who: LocalNode, *, signed: bool = True) -> httpx.AsyncClient:
        """``who``'s mTLS client to the honest node, signing with ``who``'s identity."""
        context = client_context(
            who.home.tls_cert, who.home.tls_key, trusted_pems=[self.honest.ca_pem]
        )
        auth = None
        if signed:
            auth = SignedRequestAuth(
                MessageSigner(who.identity),
                recipient=self.honest.id,
                responder_public_key=self.honest.identity.public_key_b64,
            )
        return httpx.AsyncClient(base_url=self.honest.url, verify=context, auth=auth, timeout=10)

    async def push(self, sender: LocalNode, items: Sequence[Item]) -> int:
        """``sender`` pushes through its own gossip transport (64 KiB frames, real signatures)."""
        target = sender.runtime.directory.approved(self.honest.id)
        assert target is not None
        return await sender.runtime.transport.push(target, items)

    def audit(self) -> list[JsonObject]:
        log = self.honest.audit
        return [event for day in log.days() for event in log.read(day)]


@pytest.fixture
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    root = tmp_path_factory.mktemp("hostile")
    names = ["honest", "alice", "mallory"]
    async with local_nodes(root, names, server_options={"timeout_keep_alive": DEADLINE}) as nodes:
        honest, alice, mallory = nodes
        for peer in (alice, mallory):
            await honest.approve(peer)
            await peer.approve(honest)
        yield Mesh(honest, alice, mallory)


def now_bucket() -> int:
    return int(datetime.now(UTC).timestamp()) // 3600 * 3600


def report(
    value: str,
    *,
    secret: bytes = MALLORY_SECRET,
    confidence: int = 100,
    tlp: Tlp = Tlp.GREEN,
    recipients: tuple[str, ...] = (),
    type_: str = "ipv4",
) -> Report:
    """A well-formed report as an origin with ``secret`` would make it."""
    ident = indicator_id(type_, value)
    bucket = now_bucket()
    return Report(
        indicator=ident,
        type=type_,
        value=value,
        tlp=tlp,
        recipients=tuple(sorted(recipients)),
        bucket=bucket,
        confidence=confidence,
        tags=(),
        reporter=reporter_token(secret, ident),
        expires=bucket + int(timedelta(days=20).total_seconds()),
    )


def push_body(node: LocalNode, items: Sequence[Item] = ()) -> bytes:
    document = {"indicators": [item.to_json() for item in items]}
    return orjson.dumps(sign_body(document, node.identity))  # type: ignore[arg-type]  # JSON objects


async def confidences(node: LocalNode) -> dict[str, int]:
    found = await node.store.list_indicators(IndicatorQuery(limit=100_000))
    return {i.value: i.confidence for i in found}


def events(log: list[JsonObject], name: str, **fields: object) -> list[JsonObject]:
    return [
        e for e in log if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
    ]


# -- 1. flood ---------------------------------------------------------------------------------


async def flood(
    mesh: Mesh, *, refusals: int, seconds: float
) -> tuple[Counter[int], httpx.Response]:
    """Mallory sends signed pushes from 8 connections at once until ``refusals`` 429s or time."""
    codes: Counter[int] = Counter()
    last: list[httpx.Response] = []
    deadline = time.monotonic() + seconds
    # Unsigned: the limiter counts requests before any signature is checked, and cheap
    # requests make sure the bucket runs dry even on a slow, loaded machine.
    body = push_body(mesh.mallory)
    async with mesh.client(mesh.mallory, signed=False) as client:

        async def worker() -> None:
            while codes[429] < refusals and time.monotonic() < deadline:
                response = await client.post(GOSSIP, content=body)
                codes[response.status_code] += 1
                if response.status_code == 429:
                    last[:] = [response]

        async with asyncio.TaskGroup() as group:
            for _ in range(8):
                group.create_task(worker())
    assert last, f"no 429 in {seconds} s: {dict(codes)}"
    return codes, last[0]


async def test_a_flood_is_rate_limited_with_429_and_costs_the_peer_reputation(mesh: Mesh) -> None:
    before = mesh.reputation.standing(PeerId(mesh.mallory.id))
    counted = METRICS.value(REFUSED_METRIC, reason="rate_limited")
    values = await confidences(mesh.honest)

    codes, refused = await flood(mesh, refusals=20, seconds=30)

    assert set(codes) <= {401, 429}, codes
    assert (
        codes[401] >= 90
    )  # the burst (100) passes (to be refused unsigned), then the bucket runs dry
    assert refused.json() == {"error": "rate limited", "reason": refused.json()["reason"]}
    assert int(refused.headers["retry-after"]) >= 1
    assert METRICS.value(REFUSED_METRIC, reason="rate_limited") - counted == codes[429]
    after = mesh.reputation.standing(PeerId(mesh.mallory.id))
    assert after.parts["behaviour"] < 0
    assert after.score < before.score
    # Per-peer buckets: the honest peer is served at once and not blamed.
    async with mesh.client(mesh.alice) as client:
        served = await client.post(GOSSIP, content=push_body(mesh.alice))
    assert served.status_code == 200
    assert mesh.reputation.standing(PeerId(mesh.alice.id)).parts["behaviour"] == 0
    assert await confidences(mesh.honest) == values
    rejected = events(mesh.audit(), "request_rejected", reason="rate limited")
    assert [e["key_id"] for e in rejected] == [
        f"peer:{mesh.mallory.id}"
    ]  # once a minute, not per request


@pytest.mark.slow
async def test_a_sustained_flood_gets_the_peer_quarantined(mesh: Mesh) -> None:
    mallory = PeerId(mesh.mallory.id)
    deadline = time.monotonic() + 40
    while mallory not in mesh.reputation.quarantined():
        assert time.monotonic() < deadline, mesh.reputation.standing(mallory)
        await flood(mesh, refusals=20, seconds=5)
    fresh = report("45.200.0.1")
    give_up = time.monotonic() + 30
    async with mesh.client(mesh.mallory) as client:
        while True:
            response = await client.post(GOSSIP, content=push_body(mesh.mallory, [fresh]))
            if response.status_code != 429:
                break
            assert time.monotonic() < give_up
            await asyncio.sleep(float(response.headers["retry-after"]))  # as the node asks
    assert response.status_code == 403
    assert "quarantined" in response.json()["reason"]
    assert "45.200.0.1" not in await mesh.honest.values()
    assert mesh.reputation.allowed(PeerId(mesh.alice.id))
    assert not mesh.reputation.allowed(mallory)  # not gossiped with until a person looks


# -- 2. oversize bodies -----------------------------------------------------------------------


async def raw_connection(
    mesh: Mesh, who: LocalNode
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw TLS connection to the honest node with ``who``'s client certificate."""
    url = urlsplit(mesh.honest.url)
    context = client_context(who.home.tls_cert, who.home.tls_key, trusted_pems=[mesh.honest.ca_pem])
    return await asyncio.open_connection(
        url.hostname, url.port, ssl=context, server_hostname=url.hostname
    )


async def close_connection(writer: asyncio.StreamWriter) -> None:
    """Close a raw connection and wait (briefly) for its TLS shutdown, so no transport is
    left for the garbage collector to warn about in a later test."""
    writer.close()
    with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError):
        await asyncio.wait_for(writer.wait_closed(), 5)


async def read_response(reader: asyncio.StreamReader, seconds: float) -> tuple[int, JsonObject]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), seconds)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(v)
        for k, _, v in (line.partition(": ") for line in lines[1:])
        if k.lower() == "content-length"
    )
    body = await asyncio.wait_for(reader.readexactly(length), seconds)
    return status, orjson.loads(body)


def request_head(host: str, extra: str) -> bytes:
    head = f"POST {GOSSIP} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
    return f"{head}{extra}\r\n".encode()


async def test_a_declared_oversize_body_gets_413_before_it_is_sent(mesh: Mesh) -> None:
    counted = METRICS.value(REFUSED_METRIC, reason="body_too_large")
    declared = 100 * 1024 * 1024
    reader, writer = await raw_connection(mesh, mesh.mallory)
    try:
        # Only the headers go out: an answer proves the node never waited for the 100 MB.
        writer.write(request_head("127.0.0.1", f"content-length: {declared}\r\n"))
        await writer.drain()
        status, body = await read_response(reader, 5)
    finally:
        await close_connection(writer)
    assert status == 413
    assert body == {
        "error": "body too large",
        "reason": f"the limit is {mesh.honest.home.settings.network.max_body_bytes} bytes",
    }
    assert METRICS.value(REFUSED_METRIC, reason="body_too_large") == counted + 1


async def test_a_chunked_oversize_body_is_cut_off_at_the_limit(mesh: Mesh) -> None:
    limit = mesh.honest.home.settings.network.max_body_bytes
    attempted = 64 * 1024 * 1024
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    before = await confidences(mesh.honest)
    reader, writer = await raw_connection(mesh, mesh.mallory)
    writer.write(request_head("127.0.0.1", "transfer-encoding: chunked\r\n"))
    answer = asyncio.ensure_future(read_response(reader, 30))
    sent = 0
    sent_at_answer: int | None = None
    started = time.monotonic()
    try:
        while sent < attempted:
            writer.write(frame)
            try:
                await asyncio.wait_for(writer.drain(), DEADLINE * 4)
            except (TimeoutError, ConnectionError, ssl.SSLError):
                break  # the node stopped reading, or closed the connection
            sent += len(chunk)
            if answer.done() and sent_at_answer is None:
                sent_at_answer = sent
    finally:
        await close_connection(writer)
    status, body = await answer
    assert status == 413
    assert body["error"] == "body too large"
    # The node answered once the limit was passed and then stopped taking the body:
    # what got out is the limit plus what the socket buffers hold, far from 64 MiB.
    assert sent_at_answer is None or sent_at_answer < limit + 16 * 1024 * 1024
    assert sent < 12 * 1024 * 1024, f"the node kept reading: {sent} bytes went out"
    assert time.monotonic() - started < 30
    assert await confidences(mesh.honest) == before


# -- 3. slowloris -----------------------------------------------------------------------------


async def slowloris(mesh: Mesh, opening: bytes, drip: bytes) -> float:
    """Send ``opening`` and then ``drip`` every 0.25 s; returns seconds until the node closed."""
    reader, writer = await raw_connection(mesh, mesh.mallory)
    started = time.monotonic()
    try:
        writer.write(opening)
        while time.monotonic() - started < DEADLINE * 5:
            try:
                await writer.drain()
                data = await asyncio.wait_for(reader.read(4096), 0.25)
            except TimeoutError:
                if drip:
                    writer.write(drip)
                continue
            except (ConnectionError, ssl.SSLError):
                return time.monotonic() - started
            if not data:
                return time.monotonic() - started
        raise AssertionError("the node kept a slow connection open")
    finally:
        await close_connection(writer)


async def test_slowloris_connections_time_out_and_the_node_keeps_serving(mesh: Mesh) -> None:
    timed_out = METRICS.value(TIMED_OUT_METRIC)
    host = "127.0.0.1"
    attacks = [
        *(slowloris(mesh, b"", b"") for _ in range(6)),  # handshake, then silence
        *(
            slowloris(mesh, f"POST {GOSSIP} HTTP/1.1\r\nhost: {host}\r\n".encode(), b"x-a: b\r\n")
            for _ in range(8)
        ),
        *(slowloris(mesh, request_head(host, "content-length: 4096\r\n"), b"{") for _ in range(6)),
    ]
    running = [asyncio.ensure_future(a) for a in attacks]
    # While they hold their connections, an honest peer is served and its report stored.
    async with mesh.client(mesh.alice) as client:
        response = await client.post(
            GOSSIP, content=push_body(mesh.alice, [report("45.156.0.1", secret=ALICE_SECRET)])
        )
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "received": 1}
    # A slow but complete request inside the deadline is fine.
    reader, writer = await raw_connection(mesh, mesh.mallory)
    writer.write(f"GET /api/v1/node HTTP/1.1\r\nhost: {host}\r\n".encode())
    await asyncio.sleep(DEADLINE / 4)  # a slow client, on purpose
    writer.write(b"\r\n")
    status, _ = await read_response(reader, 5)
    await close_connection(writer)
    assert status == 200

    held = await asyncio.gather(*running)
    assert all(DEADLINE * 0.9 <= seconds < DEADLINE + 3 for seconds in held), held
    assert METRICS.value(TIMED_OUT_METRIC) - timed_out >= len(attacks)
    assert "45.156.0.1" in await mesh.honest.values()
    # The freed slots serve new requests.
    async with mesh.client(mesh.alice, signed=False) as client:
        assert (await client.get("/api/v1/node")).status_code == 200


# -- 4. warninglists --------------------------------------------------------------------------


async def test_indicators_on_warninglists_are_refused_and_counted(mesh: Mesh) -> None:
    listed = [
        report("10.20.30.40"),  # RFC 1918
        report("192.0.2.7"),  # documentation range
        report("8.8.8.8"),  # public DNS resolver
        report("127.0.0.1"),  # loopback
    ]
    fine = report("45.157.0.9")
    counted = METRICS.value(ITEMS_REFUSED_METRIC, reason="warninglist")

    received = await mesh.push(mesh.mallory, [*listed, fine])

    assert received == 1
    held = await mesh.honest.values()
    assert "45.157.0.9" in held
    assert not held & {r.value for r in listed}
    assert METRICS.value(ITEMS_REFUSED_METRIC, reason="warninglist") - counted == len(listed)
    standing = mesh.reputation.standing(PeerId(mesh.mallory.id))
    assert standing.parts["invalid"] < 0
    refused = events(mesh.audit(), "items_refused", peer=mesh.mallory.id, reason="warninglist")
    assert len(refused) == 1
    assert refused[0]["count"] == len(listed)
    assert set(refused[0]["indicators"]) == {r.indicator for r in listed}  # type: ignore[arg-type]


# -- 5. made-up indicators --------------------------------------------------------------------


async def real_data(mesh: Mesh) -> dict[str, int]:
    """The honest node's own indicators, and reports of three organisations that alice relays."""
    await mesh.honest.add(*(indicator(v, confidence=85) for v in public_ips(40, start=7000)))
    origins = [
        ALICE_SECRET,
        b"second-organisation-secret-00000",
        b"third-organisation-secret-000000",
    ]
    relayed = [
        report(v, secret=secret, confidence=90)
        for v in public_ips(20, start=8000)
        for secret in origins
    ]
    assert await mesh.push(mesh.alice, relayed) == len(relayed)
    held = await confidences(mesh.honest)
    assert set(held.values()) == {85, 90}  # three reporters lift the cap to 100
    return held


async def test_ten_thousand_made_up_indicators_stay_low_and_evict_nothing(mesh: Mesh) -> None:
    real = await real_data(mesh)
    fakes = [report(v) for v in public_ips(10_000, start=20_000)]
    quota = mesh.honest.runtime.loop.inbox.quota.limit

    received = await mesh.push(mesh.mallory, fakes)

    assert received == quota  # the rest wait for later rounds
    held = await confidences(mesh.honest)
    made_up = {v: c for v, c in held.items() if v not in real}
    assert len(made_up) == quota
    assert max(made_up.values()) <= 40  # one reporter alone, whatever it claims
    assert all(held[v] == c for v, c in real.items())  # nothing real evicted or lowered
    blocklist = await mesh.honest.store.list_indicators(
        IndicatorQuery(min_confidence=BLOCK_THRESHOLD, limit=100_000)
    )
    assert {i.value for i in blocklist} == set(real)  # every real one, and nothing made up
    assert mesh.honest.runtime.loop.inbox.quota.refused[PeerId(mesh.mallory.id)] == 10_000 - quota
    # Real reports still flow to peers beside the flood.
    await mesh.honest.runtime.loop.publish()
    view = mesh.honest.runtime.loop.index.view_for(mesh.alice.id, (), datetime.now(UTC))
    shared = {item.value for item in view.items.values() if isinstance(item, Report)}
    assert {v for v, c in real.items() if c == 85} <= shared


@pytest.mark.slow
async def test_made_up_indicators_over_many_rounds_never_reach_the_block_threshold(
    mesh: Mesh,
) -> None:
    real = await real_data(mesh)
    fakes = [report(v) for v in public_ips(10_000, start=20_000)]
    inbox = mesh.honest.runtime.loop.inbox
    for start in range(0, len(fakes), inbox.quota.limit):
        inbox.quota.start_round()  # what each gossip round does first
        # Each round mallory offers the next thousand and a hundred more than its quota.
        await mesh.push(mesh.mallory, fakes[start : start + inbox.quota.limit + 100])
    counts = await mesh.honest.store.counts()
    assert sum(counts.by_type.values()) == len(real) + len(fakes)
    # Nothing made up above the single-reporter cap; the real ones above it untouched.
    above_cap = await mesh.honest.store.list_indicators(
        IndicatorQuery(min_confidence=41, limit=10_000)
    )
    assert {i.value: i.confidence for i in above_cap} == {v: c for v, c in real.items() if c > 40}


# -- 6. replays and forged signatures ---------------------------------------------------------


async def test_replays_and_forged_signatures_get_401_with_the_reason(mesh: Mesh) -> None:
    honest, mallory = mesh.honest, mesh.mallory
    body = push_body(mallory, [report("45.158.0.1")])
    signer = MessageSigner(mallory.identity)

    def signed(content: bytes, recipient: str = honest.id) -> dict[str, str]:
        made = signer.sign_request(
            method="POST", path=GOSSIP, query=None, body=content, recipient=recipient
        )
        return dict(made.headers)

    headers = signed(body)
    forged_signature = {
        **headers,
        "signature": headers["signature"].replace(headers["signature"][6:10], "AAAA"),
    }
    async with mesh.client(mallory, signed=False) as raw:
        empty = push_body(mallory)
        first = await raw.post(GOSSIP, content=empty, headers=signed(empty))
        replayed_headers = signed(body)
        stored = await raw.post(GOSSIP, content=body, headers=replayed_headers)
        replayed = await raw.post(GOSSIP, content=body, headers=replayed_headers)
        forged = await raw.post(GOSSIP, content=body, headers=forged_signature)
        tampered = await raw.post(
            GOSSIP, content=push_body(mallory, [report("45.158.0.2")]), headers=headers
        )
        elsewhere = await raw.post(
            GOSSIP, content=body, headers=signed(body, recipient=mesh.alice.id)
        )
        as_alice = signed(body)
        as_alice["signature-input"] = as_alice["signature-input"].replace(mallory.id, mesh.alice.id)
        impersonated = await raw.post(GOSSIP, content=body, headers=as_alice)
    # The seed's body signature, made by mallory over other contents.
    other = sign_body({"indicators": []}, mallory.identity)
    seed_signature = orjson.dumps(
        {"indicators": [report("45.158.0.3").to_json()], "signature": other["signature"]}
    )
    async with mesh.client(mallory) as client:
        bad_body_signature = await client.post(GOSSIP, content=seed_signature)

    assert first.status_code == 200
    assert stored.status_code == 200
    assert stored.json() == {"status": "ok", "received": 1}
    expected = {
        "replayed": (replayed, "nonce replayed: this request was already received"),
        "forged": (forged, "bad signature"),
        "tampered": (tampered, "content digest mismatch: the body is not what was signed"),
        "elsewhere": (elsewhere, "wrong recipient: this request is meant for another node"),
        "impersonated": (impersonated, "bad signature"),
    }
    for name, (response, reason) in expected.items():
        assert response.status_code == 401, name
        assert response.json() == {"error": "signature rejected", "reason": reason}, name
    assert bad_body_signature.status_code == 401
    assert bad_body_signature.json()["reason"].startswith("body")

    held = await mesh.honest.values()
    assert "45.158.0.1" in held  # the one genuine request, once
    assert not held & {"45.158.0.2", "45.158.0.3"}
    assert mesh.reputation.standing(PeerId(mallory.id)).parts["behaviour"] < 0
    assert mesh.reputation.standing(PeerId(mesh.alice.id)).parts["behaviour"] == 0
    reasons = {e["reason"] for e in events(mesh.audit(), "request_rejected")}
    assert reasons >= {reason for _, reason in expected.values()}
    assert METRICS.value(REFUSED_METRIC, reason="signature") >= len(expected)


# -- 7. RED/AMBER for others ------------------------------------------------------------------


async def test_red_and_amber_for_others_are_refused_and_nothing_marked_is_relayed(
    mesh: Mesh,
) -> None:
    honest, alice, mallory = mesh.honest, mesh.alice, mesh.mallory
    other = NodeIdentity.generate().node_id
    for_others = [
        report("45.159.0.1", tlp=Tlp.RED, recipients=(alice.id,)),
        report("45.159.0.2", tlp=Tlp.AMBER, recipients=(alice.id,)),
        report("45.159.0.3", tlp=Tlp.AMBER_STRICT, recipients=(alice.id, other)),
    ]
    for_us = [
        report("45.159.0.4", tlp=Tlp.RED, recipients=(honest.id,)),
        report(
            "45.159.0.5", tlp=Tlp.AMBER, recipients=("isac-members",)
        ),  # a group: only its origin knows
    ]
    green = report("45.159.0.6")
    counted = METRICS.value(ITEMS_REFUSED_METRIC, reason="invalid")

    received = await mesh.push(mallory, [*for_others, *for_us, green])

    assert received == len(for_us) + 1
    held = await confidences(honest)
    assert not set(held) & {r.value for r in for_others}
    assert {r.value for r in for_us} | {green.value} <= set(held)
    assert METRICS.value(ITEMS_REFUSED_METRIC, reason="invalid") - counted == len(for_others)
    assert mesh.reputation.standing(PeerId(mallory.id)).parts["invalid"] < 0
    refused = events(mesh.audit(), "items_refused", peer=mallory.id, reason="invalid")
    assert {i for e in refused for i in e["indicators"]} == {r.indicator for r in for_others}  # type: ignore[union-attr]

    # A real session from the honest node to alice (in every group) relays GREEN only.
    target = honest.runtime.directory.approved(alice.id)
    assert target is not None
    loop = honest.runtime.loop
    view = loop.index.view_for(alice.id, ("isac-members",), datetime.now(UTC))
    outcome = await run_session(honest.runtime.transport, target, view, loop.inbox)
    assert outcome.pushed >= 1
    relayed = await alice.values()
    assert green.value in relayed
    assert not relayed & {r.value for r in [*for_others, *for_us]}


# -- 8. key rollover for a key the peer does not own ------------------------------------------


async def post_rollover(
    mesh: Mesh, sender: LocalNode, statement: JsonObject, *, signer: NodeIdentity | None = None
) -> httpx.Response:
    context = client_context(
        sender.home.tls_cert, sender.home.tls_key, trusted_pems=[mesh.honest.ca_pem]
    )
    auth = SignedRequestAuth(MessageSigner(signer or sender.identity), recipient=mesh.honest.id)
    async with httpx.AsyncClient(
        base_url=mesh.honest.url, verify=context, auth=auth, timeout=10
    ) as client:
        return await client.post(ROLLOVER_PATH, content=orjson.dumps(statement))


async def test_a_rollover_for_a_key_the_peer_does_not_own_is_refused(mesh: Mesh) -> None:
    honest, alice, mallory = mesh.honest, mesh.alice, mesh.mallory
    now = datetime.now(UTC)
    taken_over = NodeIdentity.generate()
    # A genuine statement of alice's (say, seen elsewhere), and one mallory forged for alice's key.
    genuine = make_rollover(alice.identity, taken_over, now=now).to_json()
    forged = {
        **make_rollover(mallory.identity, taken_over, now=now).to_json(),
        "old_key": alice.identity.public_key_b64,
    }

    relayed = await post_rollover(mesh, mallory, genuine)
    faked = await post_rollover(mesh, mallory, forged)

    for response in (relayed, faked):
        assert response.status_code == 401
        assert response.json() == {
            "error": "signature rejected",
            "reason": "rollover statement is not from the pinned key",
        }
    record = await honest.store.get_peer(alice.id)
    assert record is not None
    assert (record.public_key, record.status) == (
        alice.identity.public_key_b64,
        PeerStatus.APPROVED,
    )
    async with mesh.client(alice) as client:
        assert (await client.post(GOSSIP, content=push_body(alice))).status_code == 200
    impostor = MessageSigner(taken_over)
    async with mesh.client(mallory, signed=False) as raw:
        made = impostor.sign_request(
            method="POST", path=GOSSIP, query=None, body=b"{}", recipient=honest.id
        )
        assert (await raw.post(GOSSIP, content=b"{}", headers=dict(made.headers))).json()[
            "reason"
        ] == "unknown key"
    assert mesh.reputation.standing(PeerId(mallory.id)).parts["invalid"] < 0
    refusals = events(mesh.audit(), "rollover_refused", peer=mallory.id)
    assert len(refusals) == 2


async def test_a_peer_rolls_its_own_key_over_without_new_approval(mesh: Mesh) -> None:
    honest, mallory = mesh.honest, mesh.mallory
    new = NodeIdentity.generate()
    statement = make_rollover(mallory.identity, new, now=datetime.now(UTC)).to_json()

    accepted = await post_rollover(mesh, mallory, statement)

    assert accepted.status_code == 200
    assert accepted.json()["peer"] == mallory.id
    record = await honest.store.get_peer(mallory.id)
    assert record is not None
    assert (record.public_key, record.status) == (new.public_key_b64, PeerStatus.APPROVED)
    async with mesh.client(mallory, signed=False) as raw:
        for identity, expected in ((new, 200), (mallory.identity, 401)):
            made = MessageSigner(identity).sign_request(
                method="POST",
                path=GOSSIP,
                query=None,
                body=push_body_with(identity),
                recipient=honest.id,
            )
            response = await raw.post(
                GOSSIP, content=push_body_with(identity), headers=dict(made.headers)
            )
            assert response.status_code == expected, response.text
    assert events(mesh.audit(), "peer_key_rolled_over", peer=mallory.id)
    # Replaying the statement now fails: the pinned key is the new one.
    again = await post_rollover(mesh, mallory, statement, signer=new)
    assert again.status_code == 401


def push_body_with(identity: NodeIdentity) -> bytes:
    return orjson.dumps(sign_body({"indicators": []}, identity))
