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
from dataclasses import dataclass, field

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from dtim import __version__
from dtim.crypto.identity import NodeIdentity, node_id_of
from dtim.crypto.nonces import MemoryNonceCache
from dtim.crypto.signatures import PeerKey, RequestVerifier
from dtim.errors import SignatureError, StoreError, ValidationError
from dtim.model.clock import Clock, SystemClock
from dtim.model.peer import PeerStatus
from dtim.registry.http import (
    JSON,
    AddressLimit,
    BodyLimit,
    Problem,
    problem_body,
    problem_response,
)
from dtim.registry.limits import Rate, TokenBuckets
from dtim.registry.records import Outcome, Page, RegistryRecords
from dtim.registry.schemas import (
    ErrorModel,
    PeerItem,
    RegistrationRequest,
    RegistrationResponse,
    RegistryInfo,
    WithdrawalRequest,
    WithdrawalResponse,
)
from dtim.registry.statements import (
    SignedStatement,
    StatementKind,
    normalize_endpoint,
    parse_statement,
    verify_statement,
)

NEXT_SINCE_HEADER = "x-next-since"
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


@dataclass(frozen=True)
class RegistryOptions:
    """How a registry behaves (plain values; ``service`` maps settings onto them).

    Attributes:
        heartbeat_seconds: nodes refresh this often.
        missed_heartbeats: entries live this many heartbeats.
        signature_window_seconds: accepted clock difference of signed requests and statements.
        page_size: default list page size; ``max_page_size`` caps ``limit``.
        max_body_bytes: larger request bodies get 413.
        address_rate: per client address (all requests).
        key_rate: per registered key (registrations and withdrawals).
        verify_signatures: False only to measure the cost of verification (benchmarks).
        federate_with: other registries to pull signed entries from.
        federation_interval_seconds: pull period (default: a third of the heartbeat).
    """

    heartbeat_seconds: float = 300.0
    missed_heartbeats: int = 3
    signature_window_seconds: int = 300
    page_size: int = 500
    max_page_size: int = 1000
    max_body_bytes: int = 16 * 1024
    address_rate: Rate = field(default_factory=lambda: Rate(20.0, 200))
    key_rate: Rate = field(default_factory=lambda: Rate(1 / 30, 10))
    verify_signatures: bool = True
    federate_with: tuple[str, ...] = ()
    federation_interval_seconds: float | None = None

    @property
    def entry_lifetime(self) -> int:
        """Lifetime nodes should give their statements: the missed heartbeats."""
        return int(self.heartbeat_seconds * self.missed_heartbeats)

    @property
    def max_lifetime(self) -> int:
        """Longest lifetime accepted (clock skew allowed on top of the entry lifetime)."""
        return self.entry_lifetime + self.signature_window_seconds

    @property
    def federation_interval(self) -> float:
        """Seconds between federation pulls."""
        return self.federation_interval_seconds or max(1.0, self.heartbeat_seconds / 3)


class _ClaimedKey:
    """The only key a registration may be signed with: the one being registered."""

    def __init__(self, public_key: str) -> None:
        self.key = PeerKey(
            node_id_of(base64.b64decode(public_key)), public_key, PeerStatus.APPROVED
        )

    async def lookup(self, key_id: str) -> PeerKey | None:
        return self.key if key_id == self.key.key_id else None


class _ReplayCache:
    """The replay cache shared by every request's verifier.

    A verifier is built per request (its only key is the one being registered),
    so the cache must outlive it. Wrapping it also keeps it truthy:
    ``RequestVerifier`` takes ``nonces or MemoryNonceCache()``, and an empty
    ``MemoryNonceCache`` is falsy, which would silently give each request a
    cache of its own.
    """

    def __init__(self) -> None:
        self._cache = MemoryNonceCache()

    async def remember(self, key_id: str, nonce: str, *, now: int, until: int) -> bool:
        """Record the pair; False when it was seen before."""
        return await self._cache.remember(key_id, nonce, now=now, until=until)


class _Registry:
    """Request handling shared by the routes."""

    def __init__(
        self,
        records: RegistryRecords,
        identity: NodeIdentity,
        options: RegistryOptions,
        clock: Clock,
    ) -> None:
        self.records = records
        self.identity = identity
        self.options = options
        self.clock = clock
        self.nonces = _ReplayCache()
        self.key_buckets = TokenBuckets(options.key_rate)

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    async def verify_request(self, request: Request, body: bytes, public_key: str) -> str:
        """Check the RFC 9421 signature is by ``public_key``; returns its node id."""
        claimed = _ClaimedKey(public_key)
        if not self.options.verify_signatures:
            return claimed.key.key_id
        verifier = RequestVerifier(
            self.identity.node_id,
            claimed,
            window_seconds=self.options.signature_window_seconds,
            nonces=self.nonces,
            clock=self.clock,
        )
        raw_path: bytes | None = request.scope.get("raw_path")
        try:
            await verifier.verify(
                method=request.method,
                path=raw_path.decode("latin-1") if raw_path else request.url.path,
                query=request.scope.get("query_string", b"").decode("latin-1"),
                headers=[
                    (k.decode("latin-1").lower(), v.decode("latin-1"))
                    for k, v in request.headers.raw
                ],
                body=body,
            )
        except SignatureError as exc:
            if exc.reason == "unknown key":
                raise Problem.signature(
                    "key not proven: the request must be signed by the key it registers "
                    f"(keyid {claimed.key.key_id})"
                ) from None
            raise Problem.signature(exc.reason) from None
        wait = self.key_buckets.take(claimed.key.key_id, self.clock.now().timestamp())
        if wait > 0:
            raise Problem.too_many("too many registrations for this key; slow down", wait)
        return claimed.key.key_id

    def statement(self, raw: object, signature: object, kind: StatementKind) -> SignedStatement:
        """The checked statement of a request body."""
        now = self.now()
        try:
            if self.options.verify_signatures:
                signed = verify_statement(
                    raw,
                    signature,
                    now=now,
                    max_lifetime=self.options.max_lifetime,
                    skew=self.options.signature_window_seconds,
                )
            elif isinstance(raw, dict):
                signed = SignedStatement(parse_statement(raw), str(signature), raw)
            else:
                raise ValidationError("statement", "expected a JSON object")
        except (ValidationError, SignatureError) as exc:
            raise Problem.unacceptable(str(exc)) from None
        if signed.statement.kind is not kind:
            raise Problem.unacceptable(f"expected a {kind.value} statement")
        return signed

    async def store(self, signed: SignedStatement) -> None:
        outcome = await self.records.apply(signed, origin="", now=self.now(), strict=True)
        if outcome is Outcome.STALE:
            raise Problem.conflict(
                "a statement from this key with the same or a later issued_at is registered "
                "(replayed or out-of-order statement)"
            )
        if outcome is Outcome.ENDPOINT_TAKEN:
            raise Problem.conflict("another key holds a live entry for this endpoint")


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


def _page_response(page: Page, path: str, limit: int) -> Response:
    body = b"[" + ",".join(page.documents).encode("utf-8") + b"]"
    headers = {NEXT_SINCE_HEADER: str(page.next_since)}
    if page.full:
        headers["link"] = f'<{path}?since={page.next_since}&limit={limit}>; rel="next"'
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
    reg = _Registry(records, identity, opts, clock or SystemClock())
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
        page = await records.peers(since=0, limit=opts.page_size, now=reg.now())
        head = orjson.dumps(
            {
                "status": "ok",
                "node_id": node_id,
                "expires_at": statement.expires_at,
                "heartbeat_seconds": opts.heartbeat_seconds,
                "next_since": page.next_since if page.full else None,
            }
        )
        peers = b'"peers":[' + ",".join(page.documents).encode("utf-8") + b"]}"
        return Response(head[:-1] + b"," + peers, media_type=JSON)

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
    since_query = Query(0, ge=0, description="Change cursor: X-Next-Since of the previous page.")

    @app.get("/api/v1/peers", response_model=list[PeerItem], responses=_ERRORS, tags=["peers"])
    async def peers(since: int = since_query, limit: int | None = limit_query) -> Response:
        """Live entries changed after ``since``, oldest change first."""
        size = limit or opts.page_size
        page = await records.peers(since=since, limit=size, now=reg.now())
        return _page_response(page, "/api/v1/peers", size)

    @app.get(
        "/api/v1/entries", response_model=list[PeerItem], responses=_ERRORS, tags=["federation"]
    )
    async def entries(since: int = since_query, limit: int | None = limit_query) -> Response:
        """Live entries and withdrawals changed after ``since`` (for other registries)."""
        size = limit or opts.page_size
        page = await records.entries(since=since, limit=size, now=reg.now())
        return _page_response(page, "/api/v1/entries", size)

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
