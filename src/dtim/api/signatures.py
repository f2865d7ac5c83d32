"""Pure-ASGI guard that verifies DTIM's signed requests and signs the responses.

Peer routes sit behind :class:`SignatureGuard`. It reads the whole body (up to
``max_body_bytes``; 413 beyond), hands method, raw path, raw query, headers and
body to a :class:`dtim.crypto.signatures.RequestVerifier`, and either answers
401 ``{"error": "signature rejected", "reason": "<why>"}`` or calls the app with
the body replayed and the signer's peer id in ``scope["state"]["dtim_peer_id"]``.
With a signer, the app's response is buffered, and sent signed for the requester
(``Content-Digest``, ``Dtim-Recipient``, ``Signature-Input``, ``Signature``).
Rejections are written to the audit log when one is given; a rejection no
correct peer ever causes (a bad signature, a replayed nonce, a body that is not
what was signed, a signer that is not the certificate's owner) also counts
against the reputation of the peer whose client certificate sent it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, MutableMapping
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dtim.api.mtls import TLS_PEER_STATE_KEY, path_is_exempt, send_json_error
from dtim.crypto.signatures import MessageSigner, RequestVerifier, VerifiedRequest
from dtim.errors import CryptoError, SignatureError
from dtim.metrics import METRICS

PEER_STATE_KEY = "dtim_peer_id"
"""``scope["state"]`` key holding the verified signer's peer id."""
KEY_STATE_KEY = "dtim_key_id"
"""``scope["state"]`` key holding the verified signer's key id."""
DEFAULT_MAX_BODY = 4 * 1024 * 1024
FORGERY_REASONS = (
    "bad signature",
    "nonce replayed",
    "content digest mismatch",
    "signer is not the peer",
)
"""Rejection reasons (prefixes) that a correct peer never causes: they count against it."""


class RejectionLog(Protocol):
    """Where rejected requests are recorded (a :class:`dtim.crypto.auditlog.AuditLog`)."""

    def append(self, event: dict[str, str | None]) -> None:
        """Record one event."""
        ...


class _BodyTooLarge(Exception):
    pass


class SignatureGuard:
    """Verify every request's RFC 9421 signature before the app sees it.

    Args:
        app: the wrapped application.
        verifier: checks signatures, keys, time window, digest, recipient and replay.
        signer: when given, responses to verified requests are signed.
        max_body_bytes: larger bodies get 413 without being read to the end.
        exempt_paths: paths that are not signed (exact, or prefixes ending in ``/``).
        audit: records each rejection (event ``request_rejected``) when given.
        bind_tls_peer: require that the signer is the peer whose client certificate the
            connection presented (needs :class:`dtim.api.mtls.PeerCertificateGuard` first).
        penalize: called with the client certificate's peer id for a forgery or replay.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: RequestVerifier,
        *,
        signer: MessageSigner | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        exempt_paths: Collection[str] = (),
        audit: RejectionLog | None = None,
        bind_tls_peer: bool = False,
        penalize: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.signer = signer
        self.max_body_bytes = max_body_bytes
        self.exempt_paths = tuple(exempt_paths)
        self.audit = audit
        self.bind_tls_peer = bind_tls_peer
        self.penalize = penalize

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Verify, then run the app (signing its response when configured)."""
        if scope["type"] != "http" or path_is_exempt(scope["path"], self.exempt_paths):
            await self.app(scope, receive, send)
            return
        headers = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in scope["headers"]
        ]
        try:
            body = await self._read_body(receive, headers)
        except _BodyTooLarge:
            self._record(scope, "body too large", None)
            await send_json_error(
                send, 413, "body too large", f"the limit is {self.max_body_bytes} bytes"
            )
            return
        raw_path: bytes | None = scope.get("raw_path")
        query: bytes = scope.get("query_string", b"")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        try:
            verified = await self.verifier.verify(
                method=scope["method"],
                path=path,
                query=query.decode("latin-1"),  # "" and absent both give @query "?"
                headers=headers,
                body=body,
            )
            self._check_tls_binding(scope, verified)
        except SignatureError as exc:
            METRICS.inc("dtim_peer_requests_refused_total", reason="signature")
            self._record(scope, exc.reason, _claimed_key(headers))
            self._blame(scope, exc.reason)
            await send_json_error(send, 401, "signature rejected", exc.reason)
            return
        state: MutableMapping[str, object] = scope.setdefault("state", {})
        state[PEER_STATE_KEY] = verified.peer_id
        state[KEY_STATE_KEY] = verified.key_id
        replay = _replay(body, receive)
        if self.signer is None:
            await self.app(scope, replay, send)
        else:
            await self.app(scope, replay, _SigningSend(send, self.signer, verified))

    async def _read_body(self, receive: Receive, headers: list[tuple[str, str]]) -> bytes:
        for name, value in headers:
            length = value.strip()
            # isascii: str.isdigit() also accepts digits such as "²" that int() refuses.
            if (
                name == "content-length"
                and length.isascii()
                and length.isdigit()
                and int(length) > self.max_body_bytes
            ):
                raise _BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # disconnected: verify what arrived, the app will see the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _check_tls_binding(self, scope: Scope, verified: VerifiedRequest) -> None:
        if not self.bind_tls_peer:
            return
        tls_peer = (scope.get("state") or {}).get(TLS_PEER_STATE_KEY)
        if tls_peer is None:
            raise SignatureError("no verified client certificate to bind the signature to")
        if tls_peer != verified.peer_id:
            raise SignatureError("signer is not the peer that owns the client certificate")

    def _blame(self, scope: Scope, reason: str) -> None:
        tls_peer = (scope.get("state") or {}).get(TLS_PEER_STATE_KEY)
        forged = reason.startswith(FORGERY_REASONS)
        if forged and self.penalize is not None and isinstance(tls_peer, str):
            self.penalize(tls_peer)

    def _record(self, scope: Scope, reason: str, key_id: str | None) -> None:
        if self.audit is None:
            return
        client = scope.get("client")
        try:
            self.audit.append(
                {
                    "event": "request_rejected",
                    "reason": reason,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "client": client[0] if client else None,
                    "key_id": key_id,
                }
            )
        except CryptoError:
            # The rejection stands even if it could not be recorded.
            return


def _claimed_key(headers: list[tuple[str, str]]) -> str | None:
    # For the audit trail only: the keyid the request claimed, unverified and truncated.
    for name, value in headers:
        if name == "signature-input" and 'keyid="' in value:
            return value.split('keyid="', 1)[1].split('"', 1)[0][:64] or None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _SigningSend:
    """Buffers the app's response, then sends it with a response signature."""

    def __init__(self, send: Send, signer: MessageSigner, request: VerifiedRequest) -> None:
        self._send = send
        self._signer = signer
        self._request = request
        self._start: Message | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self._chunks)
        signed = self._signer.sign_response(
            status=self._start["status"],
            body=body,
            requester=self._request.key_id,
            request_signature=self._request.signature,
        )
        drop = {name for name, _ in signed.headers} | {"content-length"}
        headers = [
            (k, v)
            for k, v in self._start.get("headers", [])
            if k.decode("latin-1").lower() not in drop
        ]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in signed.headers]
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        await self._send({**self._start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
