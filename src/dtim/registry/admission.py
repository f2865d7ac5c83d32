"""Admission of registrations and withdrawals: proof of key possession, limits, statements.

A registration is accepted only when the request is RFC 9421-signed by the very
key it registers (its ``keyid`` is that key's node id), within the time window
and with a nonce never seen before; when the key is within its rate; and when
the statement inside is well-formed, signed by the same key, current, not too
long-lived, and strictly newer than what the registry holds for the key.
"""

from __future__ import annotations

import base64

from starlette.requests import Request

from dtim.crypto.identity import NodeIdentity, node_id_of
from dtim.crypto.nonces import MemoryNonceCache
from dtim.crypto.signatures import PeerKey, RequestVerifier
from dtim.errors import SignatureError, ValidationError
from dtim.model.clock import Clock
from dtim.model.peer import PeerStatus
from dtim.registry.http import Problem
from dtim.registry.limits import TokenBuckets
from dtim.registry.options import RegistryOptions
from dtim.registry.records import Outcome, RegistryRecords
from dtim.registry.statements import (
    SignedStatement,
    StatementKind,
    parse_statement,
    verify_statement,
)


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


class Admission:
    """Decides whether a registration or withdrawal request gets in, and records it."""

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
        """The current time, Unix seconds."""
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
        """Record a checked statement (strictly newer than the node's current one)."""
        outcome = await self.records.apply(signed, origin="", now=self.now(), strict=True)
        if outcome is Outcome.STALE:
            raise Problem.conflict(
                "a statement from this key with the same or a later issued_at is registered "
                "(replayed or out-of-order statement)"
            )
        if outcome is Outcome.ENDPOINT_TAKEN:
            raise Problem.conflict("another key holds a live entry for this endpoint")
