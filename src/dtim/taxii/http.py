"""HTTP details of TAXII 2.1: media types, authentication, query parameters, errors (§3).

This is the one place TAXII status codes are chosen:

=====  ==========================================================
400    bad JSON, bad ``limit``/``added_after``/``next``/match value
401    no or wrong credentials
403    the account may not read/write that collection
404    unknown collection, object or status
406    ``Accept`` names no TAXII 2.1 media type
413    the body is larger than ``max_content_length``
415    a POST whose ``Content-Type`` is not TAXII 2.1
422    JSON that is not a TAXII envelope of STIX objects
=====  ==========================================================
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ssl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from dtim.errors import ValidationError
from dtim.model.text import refuse_nul
from dtim.stix.markings import StixObject
from dtim.taxii.accounts import Account, AccountBook
from dtim.taxii.collections import ObjectQuery, decode_cursor, parse_timestamp

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
_TAXII_TYPES = ("application/taxii+json", "application/*", "*/*")
MAX_MATCH_VALUES = 1000


class HttpProblem(Exception):
    """An error response: status and the spec's error message fields."""

    def __init__(
        self, status: int, title: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {title}: {description}")
        self.status = status
        self.title = title
        self.description = description
        self.headers = headers or {}


def taxii_response(
    body: StixObject, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A TAXII JSON response."""
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type=TAXII_MEDIA_TYPE
    )


def problem_response(problem: HttpProblem) -> Response:
    """The error message resource (§3.6.1) for a problem."""
    body: StixObject = {
        "title": problem.title,
        "description": problem.description,
        "http_status": str(problem.status),
    }
    return taxii_response(body, status=problem.status, headers=problem.headers)


def _media_ok(header: str) -> bool:
    for item in header.split(","):
        kind, *params = (part.strip().lower() for part in item.split(";"))
        if kind not in _TAXII_TYPES:
            continue
        version = next(
            (p.split("=", 1)[1].strip() for p in params if p.startswith("version=")), None
        )
        if kind != "application/taxii+json" or version in (None, "2.1"):
            return True
    return False


def check_accept(request: Request) -> None:
    """406 unless ``Accept`` allows TAXII 2.1 (a missing header allows anything)."""
    accept = request.headers.get("accept")
    if accept is not None and not _media_ok(accept):
        raise HttpProblem(
            406, "Not acceptable", f"this server answers only {TAXII_MEDIA_TYPE}, not {accept!r}"
        )


def check_plain_text(request: Request) -> None:
    """400 when a path parameter or query value holds a NUL character (see dtim.model.text)."""
    try:
        refuse_nul(request.path_params.items())
        refuse_nul(request.query_params.multi_items())
    except ValidationError as exc:
        raise HttpProblem(400, f"Bad {exc.field}", str(exc)) from None


async def authenticate(request: Request, book: AccountBook, anonymous: Account | None) -> Account:
    """The account behind a request: HTTP Basic, then a client certificate, then anonymous.

    Wrong credentials are refused even when anonymous access is allowed.
    """
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                name, sep, password = (
                    base64.b64decode(token.strip(), validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                sep, name, password = "", "", ""
            # Argon2 takes most of a second and releases the GIL: keep the event loop free.
            account = await asyncio.to_thread(book.check_password, name, password) if sep else None
            if account is not None:
                return account
        raise _unauthorized("wrong user name or password")
    fingerprint = client_certificate_fingerprint(request)
    if fingerprint is not None:
        account = book.by_certificate(fingerprint)
        if account is not None:
            return account
        raise _unauthorized("the client certificate is not registered to an account")
    if anonymous is not None:
        return anonymous
    raise _unauthorized("credentials required")


def _unauthorized(description: str) -> HttpProblem:
    return HttpProblem(
        401, "Unauthorized", description, {"WWW-Authenticate": 'Basic realm="DTIM TAXII"'}
    )


def client_certificate_fingerprint(request: Request) -> str | None:
    """SHA-256 (hex) of the client certificate reported by the ASGI TLS extension, if any."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    try:
        der = ssl.PEM_cert_to_DER_cert(chain[0])
    except ValueError:
        return None
    return hashlib.sha256(der).hexdigest()


def _listing(request: Request, name: str) -> frozenset[str] | None:
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    values = frozenset(v.strip() for item in raw for v in item.split(",") if v.strip())
    if not values or len(values) > MAX_MATCH_VALUES:
        raise HttpProblem(
            400, "Bad filter", f"{name} needs 1 to {MAX_MATCH_VALUES} comma-separated values"
        )
    return values


def parse_query(request: Request, max_page: int, *, object_id: str | None = None) -> ObjectQuery:
    """The filters and paging of an objects/manifest/versions request (§3.4, §3.5)."""
    params = request.query_params
    limit = max_page
    if "limit" in params:
        raw = params["limit"]
        significant = raw.lstrip("0")
        # ASCII digits only: str.isdigit() also passes "²", which int() refuses.
        if not (raw.isascii() and raw.isdigit()) or not significant:
            raise HttpProblem(400, "Bad limit", f"limit must be a positive integer, got {raw!r}")
        # Any size past the largest page means the largest page (and int() never sees 5000 digits).
        limit = max_page if len(significant) > 9 else min(int(significant), max_page)
    after: tuple[int, int] = (-1, -1)
    if "next" in params:
        try:
            after = decode_cursor(params["next"])
        except ValueError:
            raise HttpProblem(
                400, "Bad next", "next is not a token this server handed out"
            ) from None
    added_after = None
    if "added_after" in params:
        try:
            added_after = parse_timestamp(params["added_after"])
        except ValidationError as exc:
            raise HttpProblem(400, "Bad added_after", str(exc)) from None
    versions = _listing(request, "match[version]")
    if versions is not None:
        versions = frozenset(v for v in versions if v not in ("last", "first", "all")) or None
        for version in versions or ():
            try:
                parse_timestamp(version)
            except ValidationError:
                raise HttpProblem(
                    400, "Bad match[version]", f"{version!r} is not last, first, all or a timestamp"
                ) from None
    ids = _listing(request, "match[id]")
    if object_id is not None:
        ids = frozenset({object_id}) if ids is None or object_id in ids else frozenset()
    return ObjectQuery(
        limit=limit,
        after=after,
        added_after=added_after,
        ids=ids,
        types=_listing(request, "match[type]"),
        versions=versions,
        spec_versions=_listing(request, "match[spec_version]"),
    )


def _content_type_ok(header: str) -> bool:
    kind, *params = (part.strip().lower() for part in header.split(";"))
    version = next((p.split("=", 1)[1].strip() for p in params if p.startswith("version=")), None)
    return kind == "application/taxii+json" and version in (None, "2.1")


async def read_envelope(request: Request, limit: int) -> object:
    """The JSON body of a POST, checked for media type and size before it is parsed."""
    content_type = request.headers.get("content-type", "")
    if not _content_type_ok(content_type):
        raise HttpProblem(
            415,
            "Unsupported media type",
            f"POST bodies must be {TAXII_MEDIA_TYPE}, not {content_type!r}",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpProblem(
            413, "Too large", f"the body is {declared} bytes; this server takes at most {limit}"
        )
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HttpProblem(
                413, "Too large", f"the body is over {limit} bytes, the most this server takes"
            )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpProblem(400, "Bad JSON", f"the body is not JSON: {exc}") from None
