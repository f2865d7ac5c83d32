"""A deadline for receiving each request, so slow clients (slowloris) cannot hold connections.

uvicorn times out idle keep-alive connections, but not a connection that
trickles a request in: headers one byte at a time, or a body that never
ends. :class:`RequestDeadlineMixin`, mixed into uvicorn's HTTP protocol
class (before it), gives every request the protocol's keep-alive timeout
(``timeout_keep_alive``) from its first byte — or from the handshake, for a
connection's first request — until it is completely received or the app
starts answering. A request that misses it has its connection closed (the
app sees a disconnect), and the slot is free again.

An early answer (413 for a body over the limit, 401, 429) leaves the rest of
the body unread; uvicorn would read and discard it for as long as the client
sends. Like nginx's lingering close, the mixin lets at most
:attr:`~RequestDeadlineMixin.drain_bytes` of it in (so the client gets to read
the answer) and then closes the connection::

    class PeerH11Protocol(RequestDeadlineMixin, TLSExtensionMixin, H11Protocol):
        pass

(This module does not import uvicorn: only ``service`` may.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dtim.metrics import METRICS

log = logging.getLogger("dtim.api")

TIMED_OUT_METRIC = "dtim_peer_requests_timed_out_total"
METRICS.declare(
    TIMED_OUT_METRIC,
    "counter",
    "Peer API connections closed because a request did not arrive within the deadline.",
)


class _Watched:
    """Per-connection wrapper telling the protocol when a request is in and when it is answered."""

    __slots__ = ("_app", "_owner")

    def __init__(self, app: ASGIApp, owner: RequestDeadlineMixin) -> None:
        self._app = app
        self._owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        owner = self._owner
        if scope["type"] != "http" or not _has_body(scope):
            owner.request_received()  # the headers were the whole request
            await self._app(scope, receive, send)
            return

        owner.request_started()
        complete = not _has_body(scope)

        async def receiving() -> Message:
            nonlocal complete
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
                owner.request_received()
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                owner.request_received()  # answered early (e.g. 401, 413): no more waiting
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                owner.response_sent(body_unread=not complete)

        await self._app(scope, receiving, sending)


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class RequestDeadlineMixin(asyncio.Protocol):
    """Close a connection whose request is not completely received within the deadline.

    The deadline is the protocol's ``timeout_keep_alive`` (uvicorn sets it from
    its config), or :attr:`request_deadline_seconds` when a subclass sets it.
    """

    app: Any  # uvicorn's own attribute; its type lives in uvicorn's private _types
    timeout_keep_alive: int  # set by uvicorn's protocol from its config
    request_deadline_seconds: float | None = None
    drain_bytes: int = 2 * 1024 * 1024
    """Bytes of a body left unread by an early answer that are read and dropped before closing."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Set up the connection and start the clock for its first request."""
        super().connection_made(transport)
        self._deadline_transport = transport
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._answering = False
        self._early_data = False
        self._drain_left: int | None = None
        self.app = _Watched(self.app, self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """The first byte of a new request starts its clock; an unread body is bounded."""
        if self._drain_left is not None:
            self._drain_left -= len(data)
            if self._drain_left < 0:
                self._close("the rest of a refused request body is too large")
                return
        if self._answering:
            self._early_data = True  # pipelined: its clock starts once this answer is out
        elif self._deadline_timer is None:
            self._arm()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._disarm()
        super().connection_lost(exc)

    def request_started(self) -> None:
        """A new request reached the app: whatever body came before it has ended."""
        self._drain_left = None

    def request_received(self) -> None:
        """The request is in (or being answered): stop its clock."""
        self._disarm()
        self._answering = True

    def response_sent(self, *, body_unread: bool = False) -> None:
        """The answer is out; a request already arriving gets its clock now.

        Args:
            body_unread: the app answered without reading the whole body; what the
                client still sends of it is read and dropped up to :attr:`drain_bytes`.
        """
        self._answering = False
        if body_unread:
            self._drain_left = self.drain_bytes
        if self._early_data:
            self._early_data = False
            self._arm()

    def _arm(self) -> None:
        seconds = self.request_deadline_seconds or self.timeout_keep_alive
        self._deadline_timer = asyncio.get_running_loop().call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None

    def _expired(self) -> None:
        self._deadline_timer = None
        if not self._deadline_transport.is_closing():
            METRICS.inc(TIMED_OUT_METRIC)
            self._close("request not received in time")

    def _close(self, why: str) -> None:
        self._disarm()
        transport = self._deadline_transport
        if not transport.is_closing():
            log.info("closed a connection from %s: %s", transport.get_extra_info("peername"), why)
            transport.close()
