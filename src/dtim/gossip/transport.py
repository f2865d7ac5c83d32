"""Talking to peers: the :class:`GossipTransport` seam and its HTTPS/mTLS implementation.

Every call to a peer is mutual TLS (our node certificate as client
certificate; the peer's pinned CA as the only trust anchor, one context per
peer so one peer's CA cannot vouch for another), carries an RFC 9421
signature by our identity for that peer, and must come back with a response
signed by the peer's approved key. Every call has a timeout. Foreign errors
become :class:`~dtim.errors.PeerUnreachable` (network, timeout, 5xx, 429) or
:class:`~dtim.errors.PeerRejected` (TLS refused, signature, 401/403), and a
reply that breaks the protocol becomes :class:`~dtim.errors.ProtocolError`.

The peer API (:mod:`dtim.api.peer`)::

    GET  /api/v1/node                          who the node is (no client certificate)
    POST /api/v1/gossip/reconcile?session=ID   one RBSR message in, the reply out (binary)
    POST /api/v1/gossip/pull?session=ID        items the peer found we lack, one frame
    POST /api/v1/indicators/gossip             {"indicators": [items], "signature": ...}

No request or response body is larger than :data:`~dtim.gossip.protocol.MAX_FRAME`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import orjson

from dtim.crypto.bodysig import sign_body
from dtim.crypto.httpauth import SignedRequestAuth
from dtim.crypto.identity import (
    NodeIdentity,
)
from dtim.crypto.signatures import MessageSigner, SigningKeys
from dtim.crypto.tls import client_context
from dtim.errors import (
    CryptoError,
    PeerRejected,
    PeerUnreachable,
    ProtocolError,
    SignatureError,
)
from dtim.gossip.nodeinfo import (
    NODE_PATH,
    PROTOCOL_VERSION,
    NodeInfo,
    fetch_node_info,
    node_document,
    read_node_document,
)
from dtim.gossip.protocol import MAX_FRAME, decode_batch, decode_item
from dtim.gossip.report import Item, encode
from dtim.gossip.traffic import TrafficMeter
from dtim.model import Clock, Peer
from dtim.model.indicator import JsonObject, JsonValue

GOSSIP_PATH = "/api/v1/indicators/gossip"
PUBLIC_PATH = "/api/v1/indicators/public"
RECONCILE_PATH = "/api/v1/gossip/reconcile"
PULL_PATH = "/api/v1/gossip/pull"
_PUSH_OVERHEAD = 512
"""Room for the push wrapper and its signature inside one frame."""


@dataclass(frozen=True, slots=True)
class Pulled:
    """One frame of items pulled from a peer, and whether more are waiting."""

    items: list[Item]
    more: bool


class GossipTransport(Protocol):
    """Calls to one peer during gossip (HTTPS in a node, in-memory in simulations)."""

    async def reconcile(self, peer: Peer, session: str, message: bytes) -> bytes:
        """Send one reconciliation message; the peer's reply (empty: it has nothing to add)."""
        ...

    async def pull(self, peer: Peer, session: str) -> Pulled:
        """Fetch the next frame of items the peer found we lack in ``session``."""
        ...

    async def push(self, peer: Peer, items: Sequence[Item], *, stem: bool = False) -> int:
        """Deliver items (in as many frames as needed); how many the peer took as new."""
        ...


def push_frames(items: Sequence[Item], limit: int = MAX_FRAME) -> list[list[Item]]:
    """Split items into groups whose push body stays within ``limit`` bytes."""
    groups: list[list[Item]] = []
    current: list[Item] = []
    size = _PUSH_OVERHEAD
    for item in items:
        cost = len(encode(item)) + 1
        if current and size + cost > limit:
            groups.append(current)
            current, size = [], _PUSH_OVERHEAD
        current.append(item)
        size += cost
    if current:
        groups.append(current)
    return groups


class HttpTransport:
    """:class:`GossipTransport` over HTTPS with mTLS and signed requests.

    Args:
        identity: this node's identity (signs every request), or its keys across a
            rollover (each peer gets requests and bodies signed with the key it knows).
        cert_path: the node certificate, presented as client certificate.
        key_path: its key.
        pins: the pinned CA PEM of a peer id (None when the peer has none yet).
        timeout: seconds for every call.
        clock: time for signatures.
        network: an httpx transport to use instead of real connections (tests).
        traffic: where the bytes of every call are counted (a new meter when None).
    """

    def __init__(
        self,
        identity: NodeIdentity | SigningKeys,
        cert_path: Path,
        key_path: Path,
        *,
        pins: Callable[[str], str | None],
        timeout: float,
        clock: Clock,
        network: httpx.AsyncBaseTransport | None = None,
        traffic: TrafficMeter | None = None,
    ) -> None:
        self._network = network
        self.traffic = traffic or TrafficMeter()
        self._identity = identity
        self._signer = MessageSigner(identity, clock=clock)
        self._cert_path = cert_path
        self._key_path = key_path
        self._pins = pins
        self._timeout = timeout
        self._clock = clock
        self._clients: dict[str, tuple[tuple[str, str, str], httpx.AsyncClient]] = {}
        self._stale: list[httpx.AsyncClient] = []

    def _body_key(self, peer_id: str) -> NodeIdentity:
        keys = self._identity
        return keys if isinstance(keys, NodeIdentity) else keys.for_peer(peer_id)

    async def close(self) -> None:
        """Close every connection."""
        clients, self._clients = self._clients, {}
        stale, self._stale = self._stale, []
        for client in [*(c for _, c in clients.values()), *stale]:
            await client.aclose()

    async def renew(self) -> None:
        """New connections present the node certificate as it is now on disk (TLS rotation).

        Open connections finish what they are doing; they are closed at the next renewal
        or at :meth:`close`.
        """
        stale, self._stale = self._stale, [c for _, c in self._clients.values()]
        self._clients = {}
        for client in stale:
            await client.aclose()

    async def forget(self, peer_id: str) -> None:
        """Drop the connection to one peer (revoked, re-pinned, or moved)."""
        found = self._clients.pop(peer_id, None)
        if found is not None:
            await found[1].aclose()

    async def _client(self, peer: Peer) -> httpx.AsyncClient:
        ca_pem = self._pins(peer.id)
        if not ca_pem:
            raise PeerRejected(f"peer {peer.id[:16]}: no pinned CA certificate yet")
        identity = (peer.endpoint, ca_pem, peer.public_key)
        found = self._clients.get(peer.id)
        if found is not None and found[0] == identity:
            return found[1]
        if found is not None:
            await found[1].aclose()
        try:
            context = client_context(self._cert_path, self._key_path, trusted_pems=[ca_pem])
        except CryptoError as exc:
            raise PeerRejected(f"peer {peer.id[:16]}: {exc}") from exc
        client = httpx.AsyncClient(
            base_url=peer.endpoint.rstrip("/"),
            verify=context,
            timeout=httpx.Timeout(self._timeout),
            trust_env=False,
            auth=SignedRequestAuth(
                self._signer,
                recipient=peer.id,
                responder_public_key=peer.public_key,
                clock=self._clock,
            ),
            limits=httpx.Limits(
                max_connections=4, max_keepalive_connections=2, keepalive_expiry=10
            ),
            transport=self._network,
        )
        self._clients[peer.id] = (identity, client)
        return client

    async def _call(
        self,
        peer: Peer,
        path: str,
        *,
        content: bytes,
        session: str | None = None,
        json: bool = False,
    ) -> httpx.Response:
        client = await self._client(peer)
        headers = {"content-type": "application/json" if json else "application/octet-stream"}
        params = {"session": session} if session is not None else None
        try:
            response = await client.post(path, content=content, params=params, headers=headers)
        except SignatureError as exc:
            raise PeerRejected(f"peer {peer.id[:16]}: response signature: {exc.reason}") from exc
        except httpx.TimeoutException as exc:
            raise PeerUnreachable(
                f"peer {peer.id[:16]}: timed out after {self._timeout} s"
            ) from exc
        except httpx.HTTPError as exc:
            await self.forget(peer.id)
            if _tls_failure(exc):
                raise PeerRejected(f"peer {peer.id[:16]}: TLS refused: {exc}") from exc
            raise PeerUnreachable(f"peer {peer.id[:16]}: {exc.__class__.__name__}: {exc}") from exc
        self.traffic.record(peer.id, sent=len(content), received=len(response.content))
        status = response.status_code
        if status == 200:
            if len(response.content) > MAX_FRAME:
                raise ProtocolError(f"peer {peer.id[:16]}: reply larger than {MAX_FRAME} bytes")
            return response
        reason = _reason(response)
        if status in (401, 403):
            raise PeerRejected(f"peer {peer.id[:16]} refused {path}: {reason}")
        if status == 429 or status >= 500:
            raise PeerUnreachable(f"peer {peer.id[:16]} answered {status} to {path}: {reason}")
        raise ProtocolError(f"peer {peer.id[:16]} answered {status} to {path}: {reason}")

    async def post_json(self, peer: Peer, path: str, body: JsonObject) -> JsonObject:
        """POST a JSON object to one of the peer API's paths; returns the peer's JSON answer.

        Raises:
            PeerUnreachable: network, timeout, 5xx or 429.
            PeerRejected: TLS refused, 401/403 (the reason says why), bad response signature.
            ProtocolError: any other answer, or one that is not a JSON object.
        """
        response = await self._call(peer, path, content=orjson.dumps(body), json=True)
        return _json_object(response.content)

    async def reconcile(self, peer: Peer, session: str, message: bytes) -> bytes:
        """Send one reconciliation message; returns the reply (empty when the peer is done)."""
        response = await self._call(peer, RECONCILE_PATH, content=message, session=session)
        return response.content

    async def pull(self, peer: Peer, session: str) -> Pulled:
        """Fetch one frame of the items the peer will push to us."""
        response = await self._call(peer, PULL_PATH, content=b"", session=session)
        items = decode_batch(response.content)
        try:
            more = orjson.loads(response.content).get("more") is True
        except orjson.JSONDecodeError as exc:  # decode_batch already parsed it
            raise ProtocolError("pull reply is not JSON") from exc
        return Pulled(items, more)

    async def push(self, peer: Peer, items: Sequence[Item], *, stem: bool = False) -> int:
        """Deliver items in frames of at most 64 KiB; returns how many the peer took as new."""
        taken = 0
        for group in push_frames(items):
            body: dict[str, JsonValue] = {"indicators": [item.to_json() for item in group]}
            if stem:
                body["stem"] = True
            signed = sign_body(body, self._body_key(peer.id))
            response = await self._call(peer, GOSSIP_PATH, content=orjson.dumps(signed), json=True)
            answer = _json_object(response.content)
            received = answer.get("received")
            if isinstance(received, bool) or not isinstance(received, int):
                raise ProtocolError(f"peer {peer.id[:16]}: gossip reply has no 'received' count")
            taken += received
        return taken


def decode_push(document: object) -> tuple[list[Item], bool]:
    """Read a push body's items and stem flag (the body signature is checked separately).

    Raises:
        ProtocolError: not ``{"indicators": [...], "signature": "..."}``, or a bad item.
    """
    if not isinstance(document, dict) or not isinstance(document.get("indicators"), list):
        raise ProtocolError('gossip body must be {"indicators": [...], "signature": "..."}')
    extra = set(document) - {"indicators", "signature", "stem"}
    if extra:
        raise ProtocolError(f"gossip body has unknown fields: {', '.join(sorted(extra))}")
    stem = document.get("stem", False)
    if not isinstance(stem, bool):
        raise ProtocolError("gossip body field 'stem' must be true or false")
    items: list[Item] = []
    for index, raw in enumerate(document["indicators"]):
        try:
            items.append(decode_item(raw))
        except ProtocolError as exc:
            raise ProtocolError(f"indicators[{index}]: {exc}") from exc
    return items, stem


def _json_object(content: bytes) -> JsonObject:
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("reply is not JSON") from exc
    if not isinstance(document, dict):
        raise ProtocolError("reply is not a JSON object")
    return document


def _reason(response: httpx.Response) -> str:
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(document, dict):
        return str(document.get("reason") or document.get("error") or "")[:200]
    return ""


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen) or "alert" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


__all__ = [
    "GOSSIP_PATH",
    "NODE_PATH",
    "PROTOCOL_VERSION",
    "PUBLIC_PATH",
    "PULL_PATH",
    "RECONCILE_PATH",
    "GossipTransport",
    "HttpTransport",
    "NodeInfo",
    "Pulled",
    "decode_push",
    "fetch_node_info",
    "node_document",
    "push_frames",
    "read_node_document",
]
