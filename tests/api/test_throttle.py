"""Token buckets, the per-peer rate limit and the body limit, in-process (ASGITransport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from dtim.api.mtls import TLS_PEER_STATE_KEY
from dtim.api.throttle import BodyLimitGuard, RateLimitGuard, TokenBuckets, request_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_buckets_refill_at_their_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, now=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # keys are independent
    clock.now = 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    with pytest.raises(ValueError, match="rate"):
        TokenBuckets(rate=0, burst=1)


def test_buckets_forget_the_oldest_keys_beyond_the_bound() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=2, now=Clock())
    for key in ("a", "b", "c"):
        assert buckets.take(key) == 0.0
    assert buckets.take("a") == 0.0  # forgotten, so full again


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


def as_peer(peer: str | None, app: object) -> object:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if peer is not None:
            scope.setdefault("state", {})[TLS_PEER_STATE_KEY] = peer
        await app(scope, receive, send)  # type: ignore[operator]

    return wrapped


@pytest.fixture
async def limited() -> AsyncIterator[httpx.AsyncClient]:
    inner = Starlette(routes=[Route("/", echo, methods=["GET", "POST"])])
    guarded = RateLimitGuard(inner, TokenBuckets(rate=0.001, burst=2))
    transport = httpx.ASGITransport(as_peer("p1", guarded))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_rate_limit_answers_429_json_with_retry_after(limited: httpx.AsyncClient) -> None:
    codes = [(await limited.get("/")).status_code for _ in range(2)]
    refused = await limited.get("/")
    assert codes == [200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate limited"
    assert int(refused.headers["retry-after"]) >= 1


def test_requests_are_keyed_by_peer_then_address() -> None:
    assert request_key({"state": {TLS_PEER_STATE_KEY: "abc"}}) == "peer:abc"
    assert request_key({"client": ("192.0.2.1", 5)}) == "ip:192.0.2.1"
    assert request_key({}) == "ip:unknown"


async def test_body_limit_by_length_and_while_streaming() -> None:
    inner = Starlette(routes=[Route("/", echo, methods=["POST"])])
    transport = httpx.ASGITransport(BodyLimitGuard(inner, 10))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        small = await client.post("/", content=b"x" * 10)
        declared = await client.post("/", content=b"x" * 11)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"xxxx"

        streamed = await client.post("/", content=chunks())
    assert small.json() == {"size": 10}
    assert declared.status_code == 413
    assert declared.json() == {"error": "body too large", "reason": "the limit is 10 bytes"}
    assert streamed.status_code == 413
