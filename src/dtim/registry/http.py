"""HTTP edges of the registry: error answers, body limits and per-address rate limits.

This is the one place registry status codes are chosen. Every error is JSON,
``{"error": "<what>", "reason": "<why, for a person>"}``:

=====  ================================================================
400    malformed JSON, wrong field types, bad ``since``/``limit``
401    the request signature is missing, malformed, stale, replayed, or
       not made by the key being registered or withdrawn
404    unknown path
405    wrong method
409    a newer statement from this key is registered (stale/replayed
       statement), or another key holds this endpoint
413    body larger than the limit
422    a well-formed statement that cannot be accepted: expired, issued
       in the future, too long-lived, bad statement signature, fields
       that disagree with it
429    too many requests from this address or key (``Retry-After``)
503    the registry database is unavailable
=====  ================================================================
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dtim.registry.limits import TokenBuckets

JSON = "application/json"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Problem(Exception):
    """An error answer: status, a short error name and a reason for the operator."""

    def __init__(
        self, status: int, error: str, reason: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers or {}

    @classmethod
    def bad_request(cls, reason: str) -> Problem:
        """400: the request is malformed."""
        return cls(400, "invalid request", reason)

    @classmethod
    def signature(cls, reason: str) -> Problem:
        """401: the request signature was rejected."""
        return cls(401, "signature rejected", reason)

    @classmethod
    def conflict(cls, reason: str) -> Problem:
        """409: the statement conflicts with what is registered."""
        return cls(409, "conflict", reason)

    @classmethod
    def unacceptable(cls, reason: str) -> Problem:
        """422: a well-formed statement that cannot be accepted."""
        return cls(422, "invalid statement", reason)

    @classmethod
    def too_many(cls, reason: str, retry_after: float) -> Problem:
        """429 with ``Retry-After`` (whole seconds, at least 1)."""
        return cls(
            429, "rate limited", reason, {"retry-after": str(max(1, math.ceil(retry_after)))}
        )

    @classmethod
    def unavailable(cls, reason: str) -> Problem:
        """503: a dependency failed."""
        return cls(503, "unavailable", reason)


def problem_body(error: str, reason: str) -> bytes:
    """The JSON error document."""
    return orjson.dumps({"error": error, "reason": reason})


def problem_response(problem: Problem) -> Response:
    """The response for a :class:`Problem`."""
    return Response(
        problem_body(problem.error, problem.reason),
        status_code=problem.status,
        headers=problem.headers,
        media_type=JSON,
    )


async def _send_problem(send: Send, problem: Problem) -> None:
    body = problem_body(problem.error, problem.reason)
    headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Pure-ASGI guard: request bodies larger than ``max_bytes`` get 413, unread beyond the limit.

    The body is buffered (it is small by construction) and replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared and the actual length, then run the app."""
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        too_large = Problem(413, "body too large", f"the limit is {self.max_bytes} bytes")
        for name, value in scope["headers"]:
            if (
                name == b"content-length"
                and value.strip().isdigit()
                and int(value) > self.max_bytes
            ):
                await _send_problem(send, too_large)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_problem(send, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class AddressLimit:
    """Pure-ASGI guard: a token bucket per client address; 429 with ``Retry-After`` when empty.

    The address is the ASGI ``client`` (uvicorn replaces it with ``X-Forwarded-For``
    only for proxies listed in ``--forwarded-allow-ips``). Paths in ``exempt`` (health
    probes) are not counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        buckets: TokenBuckets,
        *,
        exempt: frozenset[str] = frozenset({"/healthz", "/readyz"}),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.exempt = exempt
        self._monotonic = monotonic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request against its address, then run the app or answer 429."""
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wait = self.buckets.take(address, self._monotonic())
        if wait > 0:
            await _send_problem(
                send, Problem.too_many(f"too many requests from {address}; slow down", wait)
            )
            return
        await self.app(scope, receive, send)
