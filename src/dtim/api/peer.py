"""The peer API: what other DTIM nodes (and the public) call on the node's HTTPS port.

Routes (OpenAPI at ``/openapi.json``, docs at ``/docs``)::

    GET  /api/v1/node                          who this node is            public
    GET  /api/v1/indicators/public             TLP:CLEAR indicators, paged public
    POST /api/v1/indicators/gossip             push reports (the seed's)   approved peers
    POST /api/v1/gossip/reconcile?session=ID   one RBSR message            approved peers
    POST /api/v1/gossip/pull?session=ID        items the peer lacks        approved peers
    POST /api/v1/node/rollover                 the peer's key rollover     approved peers

Requests of peers pass, outermost first: the body limit (413), mutual TLS
with a certificate from an approved peer's pinned CA (401), the per-peer
rate limit (429), and the RFC 9421 signature of the same approved peer
(401); responses to them are signed. A flood and a forged or replayed
signature also count against the peer's reputation (once per second). Every error is JSON
(:mod:`dtim.api.errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp

from dtim import __version__
from dtim.aging import DecayModel
from dtim.api.errors import ApiError, error_responses, install_error_handlers
from dtim.api.health import ReadinessCheck, health_router
from dtim.api.mtls import PeerCertificateGuard, PeerIdentifier
from dtim.api.signatures import PEER_STATE_KEY, SignatureGuard
from dtim.api.throttle import BodyLimitGuard, PenaltyGate, RateLimitGuard, TokenBuckets
from dtim.crypto.bodysig import verify_body
from dtim.crypto.signatures import MessageSigner, RequestVerifier
from dtim.errors import PeerRejected, ProtocolError, SignatureError
from dtim.gossip.directory import PeerDirectory
from dtim.gossip.inbox import AuditSink, record
from dtim.gossip.protocol import MAX_FRAME
from dtim.gossip.responder import Responder
from dtim.gossip.rollover import ROLLOVER_PATH, accept_rollover
from dtim.gossip.sync import GossipLoop
from dtim.gossip.transport import (
    GOSSIP_PATH,
    NODE_PATH,
    PUBLIC_PATH,
    PULL_PATH,
    RECONCILE_PATH,
    decode_push,
)
from dtim.model import Clock, Peer, PeerId
from dtim.model.indicator import JsonValue
from dtim.privacy import Destination, PrivacyFilter
from dtim.store import MAX_SEQUENCE
from dtim.store.gossip import GossipStore

PUBLIC_PATHS = (NODE_PATH, PUBLIC_PATH, "/healthz", "/readyz", "/docs", "/openapi.json")
"""Paths that need neither a client certificate nor a signature."""
DEFAULT_RATE = 20.0
"""Requests per second each peer may sustain."""
DEFAULT_BURST = 100.0
"""Requests each peer may send at once."""
_BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}
_PUBLIC_ERRORS = error_responses(
    {
        422: "Malformed query parameters",
        429: "Too many requests from this address (Retry-After)",
        503: "The store is unavailable",
    }
)
_PEER_ERRORS = error_responses(
    {
        400: "Not a well-formed gossip message",
        401: "Client certificate or request signature rejected",
        403: "Not an approved peer, or quarantined",
        413: "Body too large",
        422: "Malformed query parameters",
        429: "Too many requests from this peer (Retry-After)",
        503: "The store is unavailable",
    }
)


class PublicIndicators:
    """``/api/v1/indicators/public``: TLP:CLEAR through the privacy filter for ``public``.

    Args:
        items: the gossip tables (the store's CLEAR page query).
        privacy: the node's privacy filter.
        model: aging (expired indicators are not served; ``valid_until`` is shown).
        clock: time.
    """

    def __init__(
        self, items: GossipStore, privacy: PrivacyFilter, model: DecayModel, clock: Clock
    ) -> None:
        self._items = items
        self._privacy = privacy
        self._model = model
        self._clock = clock
        self._public = Destination.public()

    async def page(self, after: int, limit: int) -> tuple[list[JsonValue], int | None]:
        """Up to ``limit`` shareable indicators changed after ``after``; and the next cursor."""
        now = self._clock.now()
        out: list[JsonValue] = []
        cursor = after
        for _ in range(8):  # bounded scan: a page may come back short
            rows = await self._items.public_page(cursor, limit)
            for seq, indicator in rows:
                cursor = seq
                if self._model.expired(indicator.type, indicator.last_seen, now):
                    continue
                until = self._model.valid_until(indicator.type, indicator.last_seen)
                shared = self._privacy.share(indicator, self._public, valid_until=until)
                if shared is not None:
                    out.append(shared.to_json())
                    if len(out) >= limit:
                        return out, cursor
            if len(rows) < limit:
                return out, None
        return out, cursor


@dataclass(frozen=True)
class PeerApi:
    """What the peer API serves.

    Attributes:
        document: the node's signed ``GET /api/v1/node`` document.
        node: the gossip loop (accepts pushes).
        responder: open reconciliation sessions.
        directory: the node's peers.
        public: the public indicator feed.
        audit: the audit log (what was shared with whom).
        readiness: failing components for ``/readyz``.
        quarantined: True for a peer reputation put aside until a person looks.
    """

    document: Callable[[], Mapping[str, JsonValue]]
    node: GossipLoop
    responder: Responder
    directory: PeerDirectory
    public: PublicIndicators
    audit: AuditSink | None = None
    readiness: ReadinessCheck | None = None
    quarantined: Callable[[str], bool] | None = None


def _peer(api: PeerApi, request: Request) -> Peer:
    peer_id = request.state._state.get(PEER_STATE_KEY)
    peer = api.directory.approved(peer_id) if isinstance(peer_id, str) else None
    if peer is None:
        raise PeerRejected("not an approved peer")
    if api.quarantined is not None and api.quarantined(peer.id):
        raise PeerRejected(
            "quarantined: this node's reputation score for you fell below the threshold; "
            "its operator must look (dtim peers approve) before it accepts you again"
        )
    return peer


async def _frame(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_FRAME:
        raise ApiError(413, "body too large", f"a gossip frame is at most {MAX_FRAME} bytes")
    return body


def peer_routes(api: PeerApi) -> FastAPI:
    """The peer API's routes (unguarded: :func:`build_peer_app` adds the guards)."""
    app = FastAPI(
        title="DTIM peer API",
        version=__version__,
        description="Node-to-node gossip of threat indicators (mTLS and signed requests).",
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    if api.readiness is not None:
        app.include_router(health_router(api.readiness))

    @app.get(
        NODE_PATH,
        tags=["node"],
        summary="Who this node is (self-signed)",
        responses={429: _PUBLIC_ERRORS[429]},
    )
    async def node() -> JSONResponse:
        return JSONResponse(dict(api.document()))

    @app.get(
        PUBLIC_PATH,
        tags=["indicators"],
        summary="TLP:CLEAR indicators, paged",
        responses=_PUBLIC_ERRORS,
    )
    async def public(
        request: Request,
        after: Annotated[
            int, Query(ge=0, le=MAX_SEQUENCE, description="Cursor from the previous page.")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        items, cursor = await api.public.page(after, limit)
        headers = {}
        if cursor is not None:
            url = request.url.include_query_params(after=cursor, limit=limit)
            headers = {"link": f'<{url}>; rel="next"', "x-next-cursor": str(cursor)}
        return Response(orjson.dumps(items), media_type="application/json", headers=headers)

    @app.post(
        GOSSIP_PATH,
        tags=["gossip"],
        summary="Push reports (body signed by the sender)",
        responses=_PEER_ERRORS,
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["indicators", "signature"],
                            "properties": {
                                "indicators": {"type": "array", "items": {"type": "object"}},
                                "signature": {"type": "string"},
                                "stem": {"type": "boolean"},
                            },
                        }
                    }
                }
            }
        },
    )
    async def gossip(request: Request) -> dict[str, str | int]:
        peer = _peer(api, request)
        body = await _frame(request)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"gossip body is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ProtocolError('gossip body must be {"indicators": [...], "signature": "..."}')
        verify_body(document, peer.public_key)
        items, stem = decode_push(document)
        receipt = await api.node.receive(peer.id, items, stem=stem)
        return {"status": "ok", "received": receipt.received}

    @app.post(
        RECONCILE_PATH,
        tags=["gossip"],
        summary="One range-based set reconciliation message",
        responses=_PEER_ERRORS,
        openapi_extra={"requestBody": _BINARY},
        response_class=Response,
    )
    async def reconcile(
        request: Request, session: Annotated[str, Query(min_length=16, max_length=64)]
    ) -> Response:
        peer = _peer(api, request)
        message = await _frame(request)
        await api.node.publish()
        reply = api.responder.reconcile(peer, session, message)
        return Response(reply, media_type="application/octet-stream")

    @app.post(
        PULL_PATH,
        tags=["gossip"],
        summary="Items the peer lacks, one frame",
        responses=_PEER_ERRORS,
    )
    async def pull(
        request: Request, session: Annotated[str, Query(min_length=16, max_length=64)]
    ) -> Response:
        peer = _peer(api, request)
        await _frame(request)
        served = api.responder.pull(peer.id, session)
        if served.items:
            shared: list[JsonValue] = [
                str(i) for i in sorted({it.indicator for it in served.items})
            ]
            record(
                api.audit,
                {
                    "event": "indicators_shared",
                    "peer": peer.id,
                    "round": api.node.rounds,
                    "via": "pull",
                    "count": len(served.items),
                    "indicators": shared,
                },
            )
        return Response(served.frame, media_type="application/json")

    @app.post(
        ROLLOVER_PATH,
        tags=["node"],
        summary="Present this peer's identity key rollover statement",
        responses=_PEER_ERRORS,
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": [
                                "type",
                                "old_key",
                                "new_key",
                                "at",
                                "signature",
                                "new_signature",
                            ],
                            "properties": {
                                name: {"type": "string"}
                                for name in (
                                    "type",
                                    "old_key",
                                    "new_key",
                                    "at",
                                    "signature",
                                    "new_signature",
                                )
                            },
                        }
                    }
                }
            }
        },
    )
    async def rollover(request: Request) -> dict[str, str]:
        peer = _peer(api, request)
        body = await _frame(request)
        try:
            statement = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"rollover statement is not JSON: {exc}") from exc
        if not isinstance(statement, dict):
            raise ProtocolError("a rollover statement is a JSON object")
        try:
            updated = await accept_rollover(
                api.node.store,
                api.directory,
                peer,
                statement,
                now=api.node.clock.now(),
                audit=api.audit,
            )
        except SignatureError:
            if api.node.reputation is not None:
                api.node.reputation.record_invalid(peer.id)
            raise
        return {"status": "ok", "peer": updated.id, "fingerprint": updated.fingerprint}

    return app


def build_peer_app(
    api: PeerApi,
    *,
    trust: PeerIdentifier,
    verifier: RequestVerifier,
    signer: MessageSigner,
    max_body_bytes: int,
    rate: float = DEFAULT_RATE,
    burst: float = DEFAULT_BURST,
    audit: AuditSink | None = None,
) -> ASGIApp:
    """The peer API with its guards, ready for uvicorn (with the TLS scope extension).

    Args:
        api: what the routes serve.
        trust: maps client certificates to approved peers (the node's ``PeerTrust``).
        verifier: checks request signatures against approved peers' keys.
        signer: signs the responses.
        max_body_bytes: bodies over this get 413 (``network.max_body_bytes``).
        rate: requests per second each peer may sustain.
        burst: requests each peer may send at once.
        audit: records rejected requests.
    """
    reputation = api.node.reputation
    penalties = None
    if reputation is not None:
        record = reputation.record_misbehaviour
        penalties = PenaltyGate(lambda peer: record(PeerId(peer)))
    guarded: ASGIApp = SignatureGuard(
        peer_routes(api),
        verifier,
        signer=signer,
        max_body_bytes=max_body_bytes,
        exempt_paths=PUBLIC_PATHS,
        audit=audit,
        bind_tls_peer=True,
        penalize=None if penalties is None else penalties.report,
    )
    guarded = RateLimitGuard(guarded, TokenBuckets(rate, burst), audit=audit, penalties=penalties)
    guarded = PeerCertificateGuard(guarded, trust, exempt_paths=PUBLIC_PATHS)
    return BodyLimitGuard(guarded, max_body_bytes)
