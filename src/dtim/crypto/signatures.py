"""DTIM's signed requests and responses: RFC 9421 HTTP message signatures with Ed25519.

A request carries (label ``dtim``)::

    Content-Digest: sha-256=:<b64>:                 (RFC 9530, always, even for an empty body)
    Dtim-Recipient: <recipient node id>
    Signature-Input: dtim=("@method" "@path" "@query" "content-digest" "dtim-recipient")
        ;created=<unix>;expires=<unix>;nonce="<random>";keyid="<sender node id>"
        ;alg="ed25519";tag="dtim-request"
    Signature: dtim=:<Ed25519 signature of the RFC 9421 signature base>:

The response to it covers ``"@status" "content-digest" "dtim-recipient"
"signature";req;key="dtim"`` (tag ``dtim-response``): it names the requester as
recipient and binds itself to that exact request through the request's signature.

The verifier rejects, each with its own :class:`SignatureError` reason: missing or
malformed signatures, a wrong recipient, a timestamp outside the window (±300 s
by default) or an expired one, a body that does not match its digest, an unknown,
unapproved or revoked key, a bad signature, and a nonce seen before (replay).
Keys are looked up through :class:`PeerKeys`, so any store can back it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from dtim.crypto import ed25519
from dtim.crypto.httpsig import (
    Headers,
    HttpMessage,
    check_content_digest,
    component,
    content_digest,
    field_value,
    is_token,
    signature_base,
    signature_params,
)
from dtim.crypto.identity import NodeIdentity, public_key_bytes
from dtim.crypto.nonces import MemoryNonceCache, NonceCache
from dtim.crypto.peerkeys import PeerKey, PeerKeys, StaticPeerKeys
from dtim.crypto.structured import (
    InnerList,
    Item,
    Params,
    StructuredFieldError,
    parse_dictionary,
    serialize_bare_item,
)
from dtim.errors import CryptoError, SignatureError
from dtim.model.clock import Clock, SystemClock
from dtim.model.peer import PeerStatus

__all__ = [
    "MessageSigner",
    "PeerKey",
    "PeerKeys",
    "RequestVerifier",
    "SignedHeaders",
    "SigningKeys",
    "StaticPeerKeys",
    "VerifiedRequest",
    "verify_response",
]

LABEL = "dtim"
ALGORITHM = "ed25519"
REQUEST_TAG = "dtim-request"
RESPONSE_TAG = "dtim-response"
RECIPIENT_HEADER = "dtim-recipient"
DEFAULT_WINDOW_SECONDS = 300
REQUEST_COMPONENTS: tuple[Item, ...] = (
    component("@method"),
    component("@path"),
    component("@query"),
    component("content-digest"),
    component(RECIPIENT_HEADER),
)
RESPONSE_COMPONENTS: tuple[Item, ...] = (
    component("@status"),
    component("content-digest"),
    component(RECIPIENT_HEADER),
    component("signature", req=True, key=LABEL),
)
_MAX_NONCE_LENGTH = 128


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request whose signature checked out."""

    key_id: str
    peer_id: str
    created: datetime
    nonce: str
    signature: bytes
    """The raw request signature, which a signed response binds to."""


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """Headers a signer adds, and the raw signature (to check the response against)."""

    headers: tuple[tuple[str, str], ...]
    signature: bytes
    key_id: str = ""
    """The ``keyid`` signed with (a signed response names it as recipient)."""


class SigningKeys(Protocol):
    """A node's identities across a key rollover (:class:`dtim.crypto.nodekeys.NodeKeys`)."""

    @property
    def current(self) -> NodeIdentity:
        """The newest identity."""
        ...

    def for_peer(self, peer: str) -> NodeIdentity:
        """The identity ``peer`` (a peer id or a requester's key id) knows this node by."""
        ...


class MessageSigner:
    """Signs requests and responses with this node's identity.

    Given :class:`SigningKeys` instead of one identity, each message is signed
    with the key its recipient knows (a peer that has not yet taken a rollover
    statement still verifies the old key).
    """

    def __init__(
        self,
        identity: NodeIdentity | SigningKeys,
        *,
        clock: Clock | None = None,
        expires_in: int = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        self._keys = identity
        self._clock = clock or SystemClock()
        self._expires_in = expires_in

    @property
    def key_id(self) -> str:
        """Our ``keyid``: the (current) node id."""
        return self._for(None).node_id

    def _for(self, peer: str | None) -> NodeIdentity:
        keys = self._keys
        if isinstance(keys, NodeIdentity):
            return keys
        return keys.current if peer is None else keys.for_peer(peer)

    def sign_request(
        self, *, method: str, path: str, query: str | None, body: bytes, recipient: str
    ) -> SignedHeaders:
        """Headers to add to a request for ``recipient`` (its node id)."""
        headers = [("content-digest", content_digest(body)), (RECIPIENT_HEADER, recipient)]
        message = HttpMessage(method=method.upper(), path=path, query=query, headers=headers)
        return self._sign(REQUEST_COMPONENTS, REQUEST_TAG, message, headers, self._for(recipient))

    def sign_response(
        self, *, status: int, body: bytes, requester: str, request_signature: bytes
    ) -> SignedHeaders:
        """Headers to add to our response to a verified request from ``requester``."""
        headers = [("content-digest", content_digest(body)), (RECIPIENT_HEADER, requester)]
        request = HttpMessage(headers=[("signature", _signature_field(request_signature))])
        message = HttpMessage(status=status, headers=headers, request=request)
        return self._sign(RESPONSE_COMPONENTS, RESPONSE_TAG, message, headers, self._for(requester))

    def _sign(
        self,
        components: tuple[Item, ...],
        tag: str,
        message: HttpMessage,
        headers: list[tuple[str, str]],
        identity: NodeIdentity,
    ) -> SignedHeaders:
        created = int(self._clock.now().timestamp())
        params = (
            ("created", created),
            ("expires", created + self._expires_in),
            ("nonce", secrets.token_urlsafe(18)),
            ("keyid", identity.node_id),
            ("alg", ALGORITHM),
            ("tag", tag),
        )
        signature = identity.sign(signature_base(components, params, message))
        headers = [
            *headers,
            ("signature-input", f"{LABEL}={signature_params(components, params)}"),
            ("signature", _signature_field(signature)),
        ]
        return SignedHeaders(tuple(headers), signature, identity.node_id)


def _signature_field(signature: bytes) -> str:
    return f"{LABEL}={serialize_bare_item(signature)}"


@dataclass(frozen=True, slots=True)
class _Parsed:
    components: tuple[Item, ...]
    params: Params
    key_id: str
    created: int
    expires: int | None
    nonce: str
    signature: bytes


def _parse_signature(headers: Headers, tag: str, required: tuple[Item, ...]) -> _Parsed:
    sig_input = field_value(headers, "signature-input")
    sig_value = field_value(headers, "signature")
    if sig_input is None or sig_value is None:
        raise SignatureError("missing signature")
    try:
        inputs = parse_dictionary(sig_input)
        values = parse_dictionary(sig_value)
    except StructuredFieldError as exc:
        raise SignatureError(f"malformed signature: {exc.reason}") from None
    declared, signed = inputs.get(LABEL), values.get(LABEL)
    if declared is None or signed is None:
        raise SignatureError(f"missing signature: no {LABEL!r} signature")
    if not isinstance(declared, InnerList) or not isinstance(signed, Item):
        raise SignatureError("malformed signature: wrong structure")
    if not isinstance(signed.value, bytes) or len(signed.value) != 64:
        raise SignatureError("malformed signature: not a 64-byte Ed25519 signature")
    params = dict(declared.params)
    key_id, created, nonce = params.get("keyid"), params.get("created"), params.get("nonce")
    expires = params.get("expires")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("malformed signature: no keyid")
    if not isinstance(created, int) or isinstance(created, bool):
        raise SignatureError("malformed signature: no created timestamp")
    if expires is not None and (not isinstance(expires, int) or isinstance(expires, bool)):
        raise SignatureError("malformed signature: bad expires")
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= _MAX_NONCE_LENGTH:
        raise SignatureError("malformed signature: no nonce")
    if "alg" in params and not is_token(params["alg"], ALGORITHM):
        raise SignatureError(f"unsupported algorithm: only {ALGORITHM} is accepted")
    if not is_token(params.get("tag"), tag):
        raise SignatureError(f"malformed signature: tag must be {tag!r}")
    covered = {(i.value, i.params) for i in declared.items}
    missing = [str(c.value) for c in required if (c.value, c.params) not in covered]
    if missing:
        raise SignatureError(f"malformed signature: does not cover {', '.join(missing)}")
    return _Parsed(
        declared.items,
        declared.params,
        key_id,
        created,
        expires,
        nonce,
        signed.value,
    )


def skew_error(created: int, moment: int, window: int) -> SignatureError:
    """The error for a signature made outside the window: it names the clock skew.

    Args:
        created: the signature's ``created`` time (signer's clock, Unix seconds).
        moment: this node's time (Unix seconds).
        window: the allowed difference either way.
    """
    skew = created - moment
    side = "ahead of" if skew > 0 else "behind"
    return SignatureError(
        f"timestamp outside window: clock skew {skew:+d} s (the signer's clock is "
        f"{abs(skew)} s {side} the verifier's; the signature window is ±{window} s): "
        "check both clocks (NTP)"
    )


class RequestVerifier:
    """Checks signed requests addressed to this node.

    Args:
        node_id: our node id; requests for another recipient are rejected.
        keys: where signing keys and their status come from.
        aliases: other ids of ours that peers may still address us by (the ids
            before an identity rollover); settable at runtime.
        window_seconds: allowed clock difference for ``created`` (both directions).
        nonces: replay cache (an in-memory one by default; share one across processes
            with a store-backed implementation).
        clock: time source.
    """

    def __init__(
        self,
        node_id: str,
        keys: PeerKeys,
        *,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
        nonces: NonceCache | None = None,
        clock: Clock | None = None,
        aliases: Iterable[str] = (),
    ) -> None:
        self.node_id = node_id
        self.aliases = frozenset(aliases)
        self._keys = keys
        self._window = window_seconds
        # ``is not None``: an empty shared cache is falsy and must still be used.
        self._nonces = nonces if nonces is not None else MemoryNonceCache()
        self._clock = clock or SystemClock()
        self._public_keys: dict[str, bytes] = {}

    async def verify(
        self,
        *,
        method: str,
        path: str,
        query: str | None,
        headers: Headers,
        body: bytes,
        now: datetime | None = None,
    ) -> VerifiedRequest:
        """Verify one request; returns who signed it.

        Args:
            method: request method.
            path: raw (percent-encoded) path.
            query: raw query string without ``?``, None when absent.
            headers: (lowercase name, value) field lines.
            body: the complete body.
            now: verification time (default: the clock).

        Raises:
            SignatureError: rejected; ``reason`` says why.
        """
        parsed = _parse_signature(headers, REQUEST_TAG, REQUEST_COMPONENTS)
        recipient = field_value(headers, RECIPIENT_HEADER)
        if recipient != self.node_id and recipient not in self.aliases:
            raise SignatureError("wrong recipient: this request is meant for another node")
        moment = int((now or self._clock.now()).timestamp())
        if abs(moment - parsed.created) > self._window:
            raise skew_error(parsed.created, moment, self._window)
        if parsed.expires is not None and parsed.expires < moment:
            raise SignatureError("signature expired")
        check_content_digest(field_value(headers, "content-digest"), body)
        key = await self._approved_key(parsed.key_id)
        message = HttpMessage(method=method.upper(), path=path, query=query, headers=headers)
        _check(self._public_key(key), parsed, message)
        until = max(parsed.created + self._window, parsed.expires or 0)
        if not await self._nonces.remember(parsed.key_id, parsed.nonce, now=moment, until=until):
            raise SignatureError("nonce replayed: this request was already received")
        return VerifiedRequest(
            key_id=parsed.key_id,
            peer_id=key.owner,
            created=datetime.fromtimestamp(parsed.created, UTC),
            nonce=parsed.nonce,
            signature=parsed.signature,
        )

    async def _approved_key(self, key_id: str) -> PeerKey:
        key = await self._keys.lookup(key_id)
        if key is None:
            raise SignatureError("unknown key")
        if key.status is PeerStatus.REVOKED:
            raise SignatureError("key revoked")
        if key.status is not PeerStatus.APPROVED:
            raise SignatureError(f"key not approved (peer is {key.status.value})")
        return key

    def _public_key(self, key: PeerKey) -> bytes:
        loaded = self._public_keys.get(key.public_key)
        if loaded is None:
            try:
                loaded = public_key_bytes(key.public_key)
            except CryptoError as exc:
                raise SignatureError(
                    f"unknown key: stored public key is unusable ({exc})"
                ) from None
            if len(self._public_keys) > 4096:
                self._public_keys.clear()
            self._public_keys[key.public_key] = loaded
        return loaded


def verify_response(
    *,
    status: int,
    headers: Headers,
    body: bytes,
    responder_public_key: str,
    our_node_id: str,
    request_signature: bytes,
    now: datetime,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
) -> str:
    """Check a peer's signed response to our signed request; returns its key id.

    Raises:
        SignatureError: missing/malformed/bad signature, not for us, not bound to our
            request, stale, or the body does not match its digest.
    """
    parsed = _parse_signature(headers, RESPONSE_TAG, RESPONSE_COMPONENTS)
    if field_value(headers, RECIPIENT_HEADER) != our_node_id:
        raise SignatureError("wrong recipient: this response is meant for another node")
    moment = int(now.timestamp())
    if abs(moment - parsed.created) > window_seconds:
        raise skew_error(parsed.created, moment, window_seconds)
    check_content_digest(field_value(headers, "content-digest"), body)
    try:
        key = public_key_bytes(responder_public_key)
    except CryptoError as exc:
        raise SignatureError(f"unknown key: {exc}") from None
    request = HttpMessage(headers=[("signature", _signature_field(request_signature))])
    _check(key, parsed, HttpMessage(status=status, headers=headers, request=request))
    return parsed.key_id


def _check(key: bytes, parsed: _Parsed, message: HttpMessage) -> None:
    base = signature_base(parsed.components, parsed.params, message)
    if not ed25519.verifies(key, parsed.signature, base):
        raise SignatureError("bad signature")
