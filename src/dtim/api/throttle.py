"""Pure-ASGI guards of the peer port: a body size limit (413) and per-peer rate limits (429).

:class:`RateLimitGuard` keys each request by the peer its client certificate
belongs to (set by :class:`dtim.api.mtls.PeerCertificateGuard`, which must
run first) or, for the public paths, by the client address, and answers
429 ``{"error": "rate limited", ...}`` with ``Retry-After`` once the key's
token bucket is empty. :class:`BodyLimitGuard` answers 413 for bodies over
the limit, by ``Content-Length`` or while reading a chunked body.
:class:`PenaltyGate` turns misbehaviour seen at the door (a flood, a forged
signature) into reputation penalties, one per peer and episode. Refusals are
counted in ``dtim_peer_requests_refused_total{reason=...}``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dtim.api.mtls import TLS_PEER_STATE_KEY, send_json_error
from dtim.errors import CryptoError
from dtim.metrics import METRICS

REFUSED_METRIC = "dtim_peer_requests_refused_total"
METRICS.declare(REFUSED_METRIC, "counter", "Peer API requests refused at the door, by reason.")


class Rejections(Protocol):
    """Where refused requests are recorded (a :class:`dtim.crypto.auditlog.AuditLog`)."""

    def append(self, event: dict[str, str | None]) -> None:
        """Record one event."""
        ...


class TokenBuckets:
    """One token bucket per key: ``burst`` requests at once, ``rate`` per second sustained.

    Args:
        rate: tokens added per second.
        burst: bucket size.
        max_keys: keys remembered; the oldest are forgotten beyond this.
        now: monotonic time source (tests pass a fake).
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = 10_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("need rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._now = now
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Take one token; 0.0 on success, else the seconds until one is available."""
        now = self._now()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets.pop(key, None)
            if len(self._buckets) >= self._max_keys:
                self._buckets.pop(next(iter(self._buckets)))
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


class PenaltyGate:
    """Reports a peer's misbehaviour to reputation at most once per ``every`` seconds.

    A flood is thousands of refused requests: counted one by one, the squared
    penalty would quarantine a peer after a single burst; counted per episode
    (a second with refusals), a sustained flood still adds up.

    Args:
        penalize: records one episode against a peer id (``Reputation.record_misbehaviour``).
        every: seconds per episode.
        now: monotonic time source.
    """

    def __init__(
        self,
        penalize: Callable[[str], None],
        *,
        every: float = 1.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._penalize = penalize
        self._every = every
        self._now = now
        self._last: dict[str, float] = {}

    def report(self, peer: str) -> None:
        """``peer`` misbehaved now."""
        now = self._now()
        if now - self._last.get(peer, -math.inf) < self._every:
            return
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[peer] = now
        self._penalize(peer)


def request_key(scope: Scope) -> str:
    """``peer:<id>`` for a request with a trusted client certificate, else ``ip:<address>``."""
    peer = (scope.get("state") or {}).get(TLS_PEER_STATE_KEY)
    if isinstance(peer, str):
        return f"peer:{peer}"
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


class RateLimitGuard:
    """Answer 429 when a peer (or an address, on public paths) sends too fast.

    Args:
        app: the wrapped application.
        buckets: the token buckets.
        audit: records each refusal (event ``request_rejected``) when given.
        penalties: counts floods of identified peers against their reputation.
    """

    def __init__(
        self,
        app: ASGIApp,
        buckets: TokenBuckets,
        *,
        audit: Rejections | None = None,
        penalties: PenaltyGate | None = None,
    ):
        self.app = app
        self.buckets = buckets
        self.audit = audit
        self.penalties = penalties
        self._logged: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Take a token for the request's key, or refuse it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = request_key(scope)
        wait = self.buckets.take(key)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        METRICS.inc(REFUSED_METRIC, reason="rate_limited")
        if self.penalties is not None and key.startswith("peer:"):
            self.penalties.report(key.removeprefix("peer:"))
        self._record(scope, key)
        retry = str(max(1, math.ceil(wait)))
        await _send_error(
            send, 429, "rate limited", f"too many requests; retry in {retry} s", retry
        )

    def _record(self, scope: Scope, key: str) -> None:
        # One audit record per key and minute: a flood must not flood the log too.
        now = time.monotonic()
        if self.audit is None or now - self._logged.get(key, -60.0) < 60.0:
            return
        self._logged[key] = now
        if len(self._logged) > 10_000:
            self._logged.clear()
        try:
            self.audit.append(
                {
                    "event": "request_rejected",
                    "reason": "rate limited",
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "key_id": key,
                }
            )
        except CryptoError:
            return


class BodyLimitGuard:
    """Answer 413 for request bodies over ``max_body_bytes``.

    A declared ``Content-Length`` over the limit is refused before reading;
    a chunked body is counted as it is read, and refused when it passes the
    limit (if the app has not started answering yet). What the client still
    sends after the answer is bounded by :class:`dtim.api.deadline.RequestDeadlineMixin`.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what is read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name.lower() == b"content-length":
                text = value.decode("latin-1").strip()
                if text.isdigit() and int(text) > self.max_body_bytes:
                    await self._refuse(send)
                    return
        size = 0
        started = False
        refused = False

        async def counting() -> Message:
            nonlocal size, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    # Answer now and let the app see a disconnected client; whatever it
                    # sends afterwards is dropped.
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def watching(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting, watching)
        except Exception:
            # After a 413 the app fails on the disconnect we gave it (e.g. starlette's
            # ClientDisconnect); that failure is the expected end of the request.
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        METRICS.inc(REFUSED_METRIC, reason="body_too_large")
        await send_json_error(
            send, 413, "body too large", f"the limit is {self.max_body_bytes} bytes"
        )


async def _send_error(send: Send, status: int, error: str, reason: str, retry: str) -> None:
    body = orjson.dumps({"error": error, "reason": reason})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"retry-after", retry.encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
