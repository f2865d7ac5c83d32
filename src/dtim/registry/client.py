"""Talking to a registry over HTTPS: describe, register, withdraw, list (verified).

Every entry a registry returns is checked here, against its own node's
signature, before anyone sees it; entries that fail are returned separately as
:class:`RejectedEntry` with the reason, never mixed in. Registrations and
withdrawals are RFC 9421-signed requests (:mod:`dtim.crypto.httpauth`) whose
recipient is the registry's key id. Network failures and refusals become
:class:`RegistryError` (:class:`RegistryRefusal` when the registry answered).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import orjson

from dtim.crypto.httpauth import SignedRequestAuth
from dtim.crypto.identity import NodeIdentity
from dtim.crypto.signatures import DEFAULT_WINDOW_SECONDS, MessageSigner
from dtim.errors import RegistryError, SignatureError, ValidationError
from dtim.model.clock import Clock, SystemClock
from dtim.model.indicator import JsonValue
from dtim.registry.statements import (
    MAX_STATEMENT_LIFETIME,
    Profile,
    SignedStatement,
    Statement,
    StatementKind,
    normalize_endpoint,
    sign_statement,
    verify_item,
)

DEFAULT_TIMEOUT = 10.0
MIN_HEARTBEAT = 10.0
"""Shortest refresh interval a registry can ask nodes for."""
MAX_PAGES = 1000
"""Upper bound on pages fetched in one listing (a registry cannot keep a node busy forever)."""


class RegistryRefusal(RegistryError):
    """The registry answered with an error; ``status``, ``error`` and ``reason`` say what."""

    def __init__(self, url: str, status: int, error: str, reason: str) -> None:
        self.status = status
        self.error = error
        self.reason = reason
        super().__init__(f"registry {url} refused ({status} {error}): {reason}")


@dataclass(frozen=True, slots=True)
class RegistryDescription:
    """What ``GET /api/v1/registry`` says."""

    node_id: str
    public_key: str
    fingerprint: str
    instance: str
    heartbeat_seconds: float
    entry_lifetime_seconds: int
    max_lifetime_seconds: int
    page_size: int


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration the registry accepted."""

    node_id: str
    issued_at: int
    expires_at: int
    heartbeat_seconds: float


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    """A served entry that did not verify, and why (it is never used)."""

    node_id: str | None
    endpoint: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class EntryPage:
    """Verified entries, rejected ones, and where to continue."""

    entries: tuple[SignedStatement, ...]
    rejected: tuple[RejectedEntry, ...]
    next_since: int
    more: bool


def registry_tls_context(ca_pems: Sequence[str] = ()) -> ssl.SSLContext:
    """A client context trusting the system store plus ``ca_pems`` (e.g. a private registry's CA).

    Raises:
        RegistryError: a PEM is not a certificate.
    """
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    joined = "\n".join(pem.strip() for pem in ca_pems if pem.strip())
    if joined:
        try:
            ctx.load_verify_locations(cadata=joined)
        except (ssl.SSLError, ValueError):
            raise RegistryError("a registry CA given to trust is not a PEM certificate") from None
    return ctx


class RegistryClient:
    """HTTPS client of one registry. Use ``async with RegistryClient(...) as client``.

    Args:
        url: the registry's base URL (``https://registry.example:3040``).
        verify: TLS context (see :func:`registry_tls_context`).
        timeout: seconds for every call.
        clock: time source (signatures, statement times, expiry checks).
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        verify: ssl.SSLContext,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._clock = clock or SystemClock()
        self._http = httpx.AsyncClient(
            base_url=self.url, verify=verify, timeout=timeout, transport=transport
        )
        self._last_issued: dict[str, int] = {}

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    def now(self) -> int:
        """The client's current time, Unix seconds."""
        return int(self._clock.now().timestamp())

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        auth: httpx.Auth | None = None,
        params: dict[str, int] | None = None,
    ) -> httpx.Response:
        headers = {"content-type": "application/json"} if body is not None else None
        try:
            response = await self._http.request(
                method,
                path,
                content=body,
                headers=headers,
                auth=auth or httpx.USE_CLIENT_DEFAULT,
                params=params,
            )
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"registry {self.url} unreachable: {exc!s} ({type(exc).__name__})"
            ) from exc
        if response.status_code >= 400:
            error, reason = "error", response.text[:200]
            try:
                document = orjson.loads(response.content)
                if isinstance(document, dict):
                    error = str(document.get("error", error))
                    reason = str(document.get("reason", reason))
            except orjson.JSONDecodeError:
                pass  # not our JSON error document; the raw text (cut) is the reason
            raise RegistryRefusal(self.url, response.status_code, error, reason)
        return response

    def _json(self, response: httpx.Response) -> JsonValue:
        try:
            document: JsonValue = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise RegistryError(f"registry {self.url} sent something that is not JSON") from None
        return document

    async def describe(self) -> RegistryDescription:
        """The registry's identity and rules.

        Raises:
            RegistryError: unreachable, refused, or a malformed answer.
        """
        document = self._json(await self._call("GET", "/api/v1/registry"))
        if not isinstance(document, dict):
            raise RegistryError(f"registry {self.url}: malformed description")
        texts = {k: document.get(k) for k in ("node_id", "public_key", "fingerprint", "instance")}
        if not all(isinstance(v, str) and v for v in texts.values()):
            raise RegistryError(f"registry {self.url}: malformed description")
        numbers = {
            key: _positive(document.get(key))
            for key in (
                "heartbeat_seconds",
                "entry_lifetime_seconds",
                "max_lifetime_seconds",
                "page_size",
            )
        }
        if None in numbers.values():
            raise RegistryError(f"registry {self.url}: malformed description")
        heartbeat, lifetime, longest, page = (numbers[k] or 0.0 for k in numbers)
        return RegistryDescription(
            node_id=str(texts["node_id"]),
            public_key=str(texts["public_key"]),
            fingerprint=str(texts["fingerprint"]),
            instance=str(texts["instance"]),
            # Whatever a registry asks, nodes neither hammer it nor sign long-lived statements.
            heartbeat_seconds=max(MIN_HEARTBEAT, heartbeat),
            entry_lifetime_seconds=int(min(lifetime, MAX_STATEMENT_LIFETIME)),
            max_lifetime_seconds=int(min(longest, MAX_STATEMENT_LIFETIME)),
            page_size=int(page),
        )

    def _issued_at(self, identity: NodeIdentity, issued_at: int | None) -> int:
        # Each statement must be newer than the last one, even within one second.
        chosen = (
            issued_at
            if issued_at is not None
            else max(self.now(), self._last_issued.get(identity.node_id, 0) + 1)
        )
        self._last_issued[identity.node_id] = max(
            chosen, self._last_issued.get(identity.node_id, 0)
        )
        return chosen

    def remember_issued(self, node_id: str, issued_at: int) -> None:
        """Carry the last ``issued_at`` over from a previous run (kept in the node's store)."""
        self._last_issued[node_id] = max(issued_at, self._last_issued.get(node_id, 0))

    def _auth(self, identity: NodeIdentity, recipient: str) -> SignedRequestAuth:
        signer = MessageSigner(identity, clock=self._clock)
        return SignedRequestAuth(signer, recipient=recipient, clock=self._clock)

    async def register(
        self,
        identity: NodeIdentity,
        endpoint: str,
        *,
        profile: Profile | None = None,
        issued_at: int | None = None,
        lifetime: int | None = None,
        description: RegistryDescription | None = None,
    ) -> Registration:
        """Register (or refresh) ``identity`` at ``endpoint``.

        Args:
            identity: our key; the statement and the request are signed with it.
            endpoint: our public https:// URL (normalised before signing).
            profile: metadata to publish; nothing by default.
            issued_at: statement time (default: now, strictly after our previous one).
            lifetime: statement lifetime (default: what the registry asks for).
            description: the registry's description, if already fetched.

        Raises:
            RegistryError: unreachable, or refused (:class:`RegistryRefusal`).
            ValidationError: ``endpoint`` or ``profile`` is not acceptable.
        """
        info = description or await self.describe()
        issued = self._issued_at(identity, issued_at)
        statement = Statement(
            StatementKind.ENTRY,
            identity.public_key_b64,
            normalize_endpoint(endpoint),
            issued,
            issued + (lifetime or info.entry_lifetime_seconds),
            profile or Profile(),
        )
        signed = sign_statement(statement, identity)
        body = orjson.dumps(
            {
                "public_key": statement.public_key,
                "endpoint": statement.endpoint,
                "statement": dict(signed.raw),
                "signature": signed.signature,
            }
        )
        response = await self._call(
            "POST", "/api/v1/nodes/register", body=body, auth=self._auth(identity, info.node_id)
        )
        document = self._json(response)
        if not isinstance(document, dict) or document.get("status") != "ok":
            raise RegistryError(f"registry {self.url}: unexpected answer to a registration")
        return Registration(identity.node_id, issued, statement.expires_at, info.heartbeat_seconds)

    async def withdraw(
        self,
        identity: NodeIdentity,
        endpoint: str,
        *,
        issued_at: int | None = None,
        description: RegistryDescription | None = None,
    ) -> None:
        """Withdraw our entry (a signed withdrawal that also reaches federated registries).

        Raises:
            RegistryError: unreachable, or refused (:class:`RegistryRefusal`).
        """
        info = description or await self.describe()
        issued = self._issued_at(identity, issued_at)
        statement = Statement(
            StatementKind.WITHDRAWAL,
            identity.public_key_b64,
            normalize_endpoint(endpoint),
            issued,
            # A withdrawal must outlive any entry issued before it.
            issued + info.max_lifetime_seconds,
        )
        signed = sign_statement(statement, identity)
        body = orjson.dumps({"statement": dict(signed.raw), "signature": signed.signature})
        await self._call(
            "DELETE",
            f"/api/v1/nodes/{identity.node_id}",
            body=body,
            auth=self._auth(identity, info.node_id),
        )

    async def peers(self, *, since: int = 0, limit: int | None = None) -> EntryPage:
        """One page of live entries after ``since``, each verified (unsigned requests)."""
        return await self._page("/api/v1/peers", since, limit, withdrawals=False)

    async def entries(self, *, since: int = 0, limit: int | None = None) -> EntryPage:
        """One page of entries and withdrawals after ``since`` (federation), each verified."""
        return await self._page("/api/v1/entries", since, limit, withdrawals=True)

    async def all_peers(self, *, since: int = 0, limit: int | None = None) -> EntryPage:
        """Every live entry after ``since``, following pages to the end."""
        found: list[SignedStatement] = []
        rejected: list[RejectedEntry] = []
        cursor = since
        for _ in range(MAX_PAGES):
            page = await self.peers(since=cursor, limit=limit)
            found.extend(page.entries)
            rejected.extend(page.rejected)
            cursor = page.next_since
            if not page.more:
                break
        return EntryPage(tuple(found), tuple(rejected), cursor, False)

    async def _page(
        self, path: str, since: int, limit: int | None, *, withdrawals: bool
    ) -> EntryPage:
        params = {"since": since} if limit is None else {"since": since, "limit": limit}
        response = await self._call("GET", path, params=params)
        items = self._json(response)
        if not isinstance(items, list):
            raise RegistryError(f"registry {self.url}: a peer list must be a JSON array")
        found: list[SignedStatement] = []
        rejected: list[RejectedEntry] = []
        now = self.now()
        for item in items:
            try:
                signed = verify_item(
                    item, now=now, max_lifetime=MAX_STATEMENT_LIFETIME, skew=DEFAULT_WINDOW_SECONDS
                )
                if not withdrawals and signed.statement.kind is not StatementKind.ENTRY:
                    raise ValidationError("statement.type", "a withdrawal in the peer list")
            except (ValidationError, SignatureError) as exc:
                rejected.append(_rejected(item, str(exc)))
                continue
            found.append(signed)
        header = response.headers.get("x-next-since", "")
        next_since = int(header) if header.isdigit() else since
        return EntryPage(
            tuple(found),
            tuple(rejected),
            next_since,
            'rel="next"' in response.headers.get("link", ""),
        )


def _positive(value: JsonValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
        return None
    return float(value)


def _rejected(item: object, reason: str) -> RejectedEntry:
    if not isinstance(item, dict):
        return RejectedEntry(None, None, reason)
    node_id, endpoint = item.get("node_id"), item.get("endpoint")
    return RejectedEntry(
        node_id if isinstance(node_id, str) else None,
        endpoint[:255] if isinstance(endpoint, str) else None,
        reason,
    )
