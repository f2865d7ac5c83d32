"""Mutual TLS at the HTTP layer: the peer certificate in the ASGI scope, and a guard on it.

uvicorn does not put TLS details into the ASGI scope. :class:`TLSExtensionMixin`
fixes that at the protocol level: mixed into uvicorn's HTTP protocol class, it
reads the client certificate from the connection's ``ssl_object`` once per
connection (after the handshake) and adds the ASGI TLS extension
(``scope["extensions"]["tls"]``, https://asgi.readthedocs.io/en/latest/specs/tls.html)
to every request on that connection::

    from uvicorn.protocols.http.h11_impl import H11Protocol

    class PeerH11Protocol(TLSExtensionMixin, H11Protocol):
        pass

    uvicorn.Config(app, http=PeerH11Protocol, ssl_context_factory=lambda c, d: ctx)

(This module does not import uvicorn: only ``service`` may.) :class:`PeerCertificateGuard`
then checks, on every request, that the certificate belongs to a peer that is
trusted *now* — so a revocation also stops keep-alive connections opened before it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Collection, MutableMapping
from typing import Any, Protocol

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

TLS_PEER_STATE_KEY = "dtim_tls_peer_id"
"""``scope["state"]`` key holding the peer id the client certificate belongs to."""

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, object]:
    """The ASGI TLS extension dict for an established TLS connection."""
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    version = ssl_object.version()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(version or ""),
        "cipher_suite": None,
    }


class _WithTLSScope:
    """Per-connection wrapper adding the TLS extension to each request scope."""

    __slots__ = ("_app", "_tls")

    def __init__(self, app: ASGIApp, tls: dict[str, object]) -> None:
        self._app = app
        self._tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = dict(scope.get("extensions") or {})
        extensions["tls"] = self._tls
        scope["extensions"] = extensions
        await self._app(scope, receive, send)


class TLSExtensionMixin(asyncio.Protocol):
    """Mix into a uvicorn HTTP protocol class (before it) to expose the peer certificate.

    uvicorn's protocols keep the ASGI app in ``self.app`` and read it for each
    request; the mixin wraps it once the TLS handshake is done.
    """

    app: Any  # uvicorn's own attribute; its type lives in uvicorn's private _types

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Set up the connection, then attach its TLS details to the app."""
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _WithTLSScope(self.app, tls_extension(ssl_object))


class PeerIdentifier(Protocol):
    """Maps a verified client certificate to the trusted peer that owns it."""

    def identify(self, cert_der: bytes) -> str | None:
        """The peer id, or None when no currently trusted peer owns the certificate."""
        ...


def client_certificate(scope: Scope) -> bytes | None:
    """DER of the client's leaf certificate from the ASGI TLS extension, if any."""
    tls = (scope.get("extensions") or {}).get("tls")
    if not isinstance(tls, dict):
        return None
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    try:
        return ssl.PEM_cert_to_DER_cert(chain[0])
    except ValueError:
        return None


def path_is_exempt(path: str, exempt: Collection[str]) -> bool:
    """Whether ``path`` matches an exempt entry (exact, or a prefix ending in ``/``)."""
    return any(
        path == entry or (entry.endswith("/") and path.startswith(entry)) for entry in exempt
    )


async def send_json_error(send: Send, status: int, error: str, reason: str) -> None:
    """Answer with ``{"error": ..., "reason": ...}`` and the given status."""
    body = orjson.dumps({"error": error, "reason": reason})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class PeerCertificateGuard:
    """Pure-ASGI guard: requests must come with a client certificate of a trusted peer.

    On success the peer id goes to ``scope["state"]["dtim_tls_peer_id"]``; otherwise
    the answer is 401 ``{"error": "client certificate rejected", "reason": ...}``.

    Args:
        app: the wrapped application.
        trust: maps certificates to peers (a :class:`dtim.crypto.tls.PeerTrust`).
        exempt_paths: paths that need no client certificate (exact, or prefixes ending in ``/``).
    """

    def __init__(
        self, app: ASGIApp, trust: PeerIdentifier, *, exempt_paths: Collection[str] = ()
    ) -> None:
        self.app = app
        self.trust = trust
        self.exempt_paths = tuple(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the certificate, then pass the request on."""
        if scope["type"] not in ("http", "websocket") or path_is_exempt(
            scope["path"], self.exempt_paths
        ):
            await self.app(scope, receive, send)
            return
        der = client_certificate(scope)
        if der is None:
            reason = "no client certificate presented"
        else:
            peer_id = self.trust.identify(der)
            if peer_id is not None:
                state: MutableMapping[str, object] = scope.setdefault("state", {})
                state[TLS_PEER_STATE_KEY] = peer_id
                await self.app(scope, receive, send)
                return
            reason = "client certificate does not belong to an approved peer"
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_json_error(send, 401, "client certificate rejected", reason)
