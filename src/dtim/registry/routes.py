"""The registry's HTTP API (FastAPI; OpenAPI at ``/openapi.json``, docs at ``/docs``).

Routes, all JSON:

* ``GET  /api/v1/registry`` — who the registry is (its key id: the recipient of signed
  requests) and the rules it applies (heartbeat, lifetimes, page sizes);
* ``POST /api/v1/nodes/register`` — the seed's ``{"public_key", "endpoint"}`` plus the
  node's signed statement; the request itself must be RFC 9421-signed by that key;
* ``DELETE /api/v1/nodes/{node_id}`` — a signed withdrawal, in a request signed by the key;
* ``GET  /api/v1/peers?since=&limit=`` — live entries as the seed's list, each item with
  its signed statement; keyset pagination on the change number (``X-Next-Since``,
  ``Link: <...>; rel="next"``);
* ``GET  /api/v1/entries?since=&limit=`` — the same including withdrawals (federation);
* ``GET  /healthz`` and ``/readyz``.
"""

from __future__ import annotations

import base64
import binascii

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from dtim import __version__
from dtim.crypto.identity import NodeIdentity, node_id_of
from dtim.errors import StoreError, ValidationError
from dtim.model.clock import Clock, SystemClock
from dtim.registry.admission import Admission
from dtim.registry.http import (
    JSON,
    AddressLimit,
    BodyLimit,
    Problem,
    problem_body,
    problem_response,
)
from dtim.registry.limits import TokenBuckets
from dtim.registry.options import RegistryOptions
from dtim.registry.pages import MIN_GZIP_BYTES, PageCache, ServedPage
from dtim.registry.records import RegistryRecords
from dtim.registry.schemas import (
    ErrorModel,
    PeerItem,
    RegistrationRequest,
    RegistrationResponse,
    RegistryInfo,
    WithdrawalRequest,
    WithdrawalResponse,
)
from dtim.registry.statements import StatementKind, normalize_endpoint
from dtim.store import MAX_SEQUENCE

__all__ = ["NEXT_SINCE_HEADER", "RegistryOptions", "create_registry_app"]

NEXT_SINCE_HEADER = "x-next-since"
REGISTRATION_PEERS = 100
"""Peers in a registration's answer (the seed's ``peers``); the rest via GET /api/v1/peers."""
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorModel, "description": text}
    for code, text in {
        400: "Malformed request",
        401: "Request signature rejected",
        409: "Stale statement, or endpoint held by another key",
        413: "Body too large",
        422: "Statement not acceptable",
        429: "Rate limited",
    }.items()
}


def _public_key_id(public_key: str) -> str:
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError):
        raise Problem.bad_request("public_key: not valid base64") from None
    if len(raw) != 32:
        raise Problem.bad_request("public_key: expected 32 raw bytes")
    return node_id_of(raw)


def _describe(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return "body: not valid JSON"
    if loc == ("body",):
        return "body: expected a JSON object (with Content-Type: application/json)"
    where = (
        ".".join(str(part) for part in loc[1:] if loc)
        if loc[:1] == ("body",)
        else ".".join(map(str, loc))
    )
    return f"{where}: {first.get('msg', 'invalid')}"


def _page_response(
    page: ServedPage, path: str, limit: int, request: Request, *, compress: bool
) -> Response:
    headers = {NEXT_SINCE_HEADER: str(page.next_since), "vary": "accept-encoding"}
    if page.full:
        headers["link"] = f'<{path}?since={page.next_since}&limit={limit}>; rel="next"'
    body = page.body
    if (
        compress
        and len(body) >= MIN_GZIP_BYTES
        and "gzip" in request.headers.get("accept-encoding", "")
    ):
        body = page.gzipped()
        headers["content-encoding"] = "gzip"
    return Response(body, media_type=JSON, headers=headers)


def create_registry_app(
    records: RegistryRecords,
    identity: NodeIdentity,
    options: RegistryOptions | None = None,
    *,
    clock: Clock | None = None,
) -> ASGIApp:
    """The registry application, behind its per-address rate limit and body limit.

    Args:
        records: the connected registry database.
        identity: the registry's own key (the recipient of signed requests).
        options: behaviour; defaults for a public registry.
        clock: time source.
    """
    opts = options or RegistryOptions()
    reg = Admission(records, identity, opts, clock or SystemClock())
    cache = PageCache(opts.list_cache_seconds)

    async def peer_page(since: int, limit: int) -> ServedPage:
        return await cache.get(
            ("peers", since, limit), lambda: records.peers(since=since, limit=limit, now=reg.now())
        )

    app = FastAPI(
        title="DTIM registry",
        version=__version__,
        description="Opt-in peer discovery for DTIM nodes. Entries are statements signed by the "
        "nodes themselves: verify them, and approve peers by hand.",
    )

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return problem_response(Problem.bad_request(_describe(exc)))

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Response:
        error = {404: "not found", 405: "method not allowed"}.get(exc.status_code, "http error")
        return Response(
            problem_body(error, str(exc.detail)),
            status_code=exc.status_code,
            media_type=JSON,
            headers=exc.headers,
        )

    @app.exception_handler(StoreError)
    async def _store(_request: Request, exc: StoreError) -> Response:
        return problem_response(Problem.unavailable("the registry database is unavailable"))

    @app.get("/api/v1/registry", response_model=RegistryInfo, tags=["registry"])
    async def info() -> RegistryInfo:
        """The registry's identity and rules."""
        return RegistryInfo(
            node_id=identity.node_id,
            public_key=identity.public_key_b64,
            fingerprint=identity.fingerprint,
            instance=await records.instance(),
            heartbeat_seconds=opts.heartbeat_seconds,
            entry_lifetime_seconds=opts.entry_lifetime,
            max_lifetime_seconds=opts.max_lifetime,
            signature_window_seconds=opts.signature_window_seconds,
            page_size=opts.page_size,
            max_page_size=opts.max_page_size,
            version=__version__,
        )

    @app.post(
        "/api/v1/nodes/register",
        response_model=RegistrationResponse,
        responses=_ERRORS,
        tags=["nodes"],
    )
    async def register(request: Request, body: RegistrationRequest) -> Response:
        """Register or refresh this node's entry (the request must be signed by its key)."""
        raw = await request.body()
        node_id = _public_key_id(body.public_key)
        await reg.verify_request(request, raw, body.public_key)
        data = orjson.loads(raw)
        signed = reg.statement(data["statement"], data["signature"], StatementKind.ENTRY)
        statement = signed.statement
        try:
            endpoint = normalize_endpoint(body.endpoint)
        except ValidationError as exc:
            raise Problem.unacceptable(str(exc)) from None
        if statement.public_key != body.public_key or statement.endpoint != endpoint:
            raise Problem.unacceptable(
                "public_key and endpoint must be those of the signed statement"
            )
        await reg.store(signed)
        page = await peer_page(0, min(opts.page_size, REGISTRATION_PEERS))
        head = orjson.dumps(
            {
                "status": "ok",
                "node_id": node_id,
                "expires_at": statement.expires_at,
                "heartbeat_seconds": opts.heartbeat_seconds,
                "next_since": page.next_since if page.full else None,
            }
        )
        return Response(head[:-1] + b',"peers":' + page.body + b"}", media_type=JSON)

    @app.delete(
        "/api/v1/nodes/{node_id}",
        response_model=WithdrawalResponse,
        responses=_ERRORS,
        tags=["nodes"],
    )
    async def withdraw(
        request: Request, node_id: str, body: WithdrawalRequest
    ) -> WithdrawalResponse:
        """Withdraw this node's entry with a signed withdrawal statement."""
        raw = await request.body()
        if _public_key_id(body.statement.public_key) != node_id:
            raise Problem.unacceptable("the statement's key is not the node named in the path")
        await reg.verify_request(request, raw, body.statement.public_key)
        data = orjson.loads(raw)
        await reg.store(
            reg.statement(data["statement"], data["signature"], StatementKind.WITHDRAWAL)
        )
        return WithdrawalResponse(status="withdrawn", node_id=node_id)

    limit_query = Query(
        None, ge=1, le=opts.max_page_size, description=f"Page size (default {opts.page_size})."
    )
    since_query = Query(
        0, ge=0, le=MAX_SEQUENCE, description="Change cursor: X-Next-Since of the previous page."
    )

    @app.get("/api/v1/peers", response_model=list[PeerItem], responses=_ERRORS, tags=["peers"])
    async def peers(
        request: Request, since: int = since_query, limit: int | None = limit_query
    ) -> Response:
        """Live entries changed after ``since``, oldest change first."""
        size = limit or opts.page_size
        page = await peer_page(since, size)
        return _page_response(page, "/api/v1/peers", size, request, compress=cache.reuses)

    @app.get(
        "/api/v1/entries", response_model=list[PeerItem], responses=_ERRORS, tags=["federation"]
    )
    async def entries(
        request: Request, since: int = since_query, limit: int | None = limit_query
    ) -> Response:
        """Live entries and withdrawals changed after ``since`` (for other registries)."""
        size = limit or opts.page_size
        page = await cache.get(
            ("entries", since, size),
            lambda: records.entries(since=since, limit=size, now=reg.now()),
        )
        return _page_response(page, "/api/v1/entries", size, request, compress=cache.reuses)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        """The database answers."""
        try:
            await records.instance()
        except StoreError:
            return JSONResponse(
                {"status": "unavailable", "failing": {"database": "unreachable"}}, status_code=503
            )
        return JSONResponse({"status": "ok"})

    return AddressLimit(BodyLimit(app, opts.max_body_bytes), TokenBuckets(opts.address_rate))
