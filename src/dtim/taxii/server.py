"""The TAXII 2.1 server (OASIS TAXII 2.1, §4 Discovery/API root, §5 Collections), as an ASGI app.

Mount it under ``/taxii2`` (``app.mount("/taxii2", TaxiiServer(...).app())``):

=======================================================  ===========================
path (below the mount)                                   endpoint
=======================================================  ===========================
``/``                                                    discovery (§4.1)
``/api/``                                                API root (§4.2)
``/api/status/{id}/``                                    status (§4.3)
``/api/collections/``                                    collections (§5.1)
``/api/collections/{id}/``                               collection (§5.2)
``/api/collections/{id}/manifest/``                      manifest (§5.3)
``/api/collections/{id}/objects/``  GET / POST           objects (§5.4, §5.5)
``/api/collections/{id}/objects/{object}/``              object (§5.6)
``/api/collections/{id}/objects/{object}/versions/``     versions (§5.8)
=======================================================  ===========================

Every response is ``application/taxii+json;version=2.1``; errors use the
spec's error message (§3.6.1) with the table in :mod:`dtim.taxii.http`.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dtim.errors import DTIMError, StixError, TaxiiError
from dtim.model import Indicator, Tlp
from dtim.model.clock import Clock, SystemClock, iso
from dtim.stix.bundle import bundle_objects
from dtim.stix.markings import StixObject
from dtim.taxii.accounts import Account, AccountBook
from dtim.taxii.backend import IndicatorFeed, Sharer
from dtim.taxii.collections import (
    COLLECTIONS,
    STIX_MEDIA_TYPE,
    Collection,
    Entry,
    ObjectQuery,
    collect,
    encode_cursor,
    find_collection,
)
from dtim.taxii.http import (
    TAXII_MEDIA_TYPE,
    HttpProblem,
    authenticate,
    check_accept,
    check_plain_text,
    parse_query,
    problem_response,
    read_envelope,
    taxii_response,
)
from dtim.taxii.inbox import take_in

STATUS_KEEP = 1000


@dataclass(frozen=True, slots=True)
class TaxiiSettings:
    """How the TAXII server presents itself and what it accepts.

    Attributes:
        title: shown in discovery and the API root.
        max_content_length: largest POST body in bytes (413 above it).
        max_page_size: most objects in one page, whatever ``limit`` asks.
        anonymous: the account used for requests without credentials, or None
            to require credentials (the default: fail closed).
        default_tlp: marking of posted indicators that carry none.
    """

    title: str = "DTIM TAXII server"
    description: str = "Threat indicators shared by this DTIM node."
    max_content_length: int = 10 * 1024 * 1024
    max_page_size: int = 1000
    anonymous: Account | None = None
    default_tlp: Tlp = Tlp.AMBER


@dataclass
class _Status:
    owner: str
    body: StixObject


@dataclass
class TaxiiServer:
    """The TAXII endpoints over a feed, the privacy filter and the accounts file."""

    feed: IndicatorFeed
    sharer: Sharer
    accounts: AccountBook
    settings: TaxiiSettings = field(default_factory=TaxiiSettings)
    clock: Clock = field(default_factory=SystemClock)
    accept: Callable[[Indicator], str | None] | None = None
    _statuses: OrderedDict[str, _Status] = field(default_factory=OrderedDict)

    def app(self) -> Starlette:
        """The ASGI application (mount it at ``/taxii2``)."""
        base = "/api/collections/{collection}"
        routes = [
            Route("/", self._wrap(self.discovery)),
            Route("/api/", self._wrap(self.api_root)),
            Route("/api/status/{status}/", self._wrap(self.status)),
            Route("/api/collections/", self._wrap(self.collections)),
            Route(base + "/", self._wrap(self.collection)),
            Route(base + "/manifest/", self._wrap(self.manifest)),
            Route(base + "/objects/", self._wrap(self.objects), methods=["GET", "POST"]),
            Route(base + "/objects/{object}/", self._wrap(self.object)),
            Route(base + "/objects/{object}/versions/", self._wrap(self.versions)),
        ]
        return Starlette(routes=routes, exception_handlers={HTTPException: _routing_problem})

    def _wrap(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                if request.method != "POST":
                    check_accept(request)
                account = await authenticate(request, self.accounts, self.settings.anonymous)
                check_plain_text(request)
                response: Response = await handler(request, account)
                return response
            except HttpProblem as problem:
                return problem_response(problem)
            except TaxiiError as exc:
                return problem_response(HttpProblem(400, "Bad request", str(exc)))

        return endpoint

    async def discovery(self, request: Request, account: Account) -> Response:
        """Discovery (§4.1): the one API root."""
        root = str(request.url).split("?", 1)[0].rstrip("/") + "/api/"
        return taxii_response(
            {
                "title": self.settings.title,
                "description": self.settings.description,
                "default": root,
                "api_roots": [root],
            }
        )

    async def api_root(self, request: Request, account: Account) -> Response:
        """API root information (§4.2)."""
        return taxii_response(
            {
                "title": self.settings.title,
                "description": self.settings.description,
                "versions": [TAXII_MEDIA_TYPE],
                "max_content_length": self.settings.max_content_length,
            }
        )

    async def status(self, request: Request, account: Account) -> Response:
        """A status resource (§4.3), visible to the account that posted."""
        found = self._statuses.get(request.path_params["status"])
        if found is None or found.owner != account.name:
            raise HttpProblem(404, "Status not found", "no such status resource for this account")
        return taxii_response(found.body)

    async def collections(self, request: Request, account: Account) -> Response:
        """The collections this account may see (§5.1)."""
        listed = [c.resource(account) for c in COLLECTIONS if c.visible_to(account)]
        return taxii_response({"collections": listed} if listed else {})

    def _collection(self, request: Request, account: Account, *, read: bool) -> Collection:
        collection = find_collection(request.path_params["collection"])
        if collection is None or not collection.visible_to(account):
            # Unknown and forbidden look the same, so names cannot be probed.
            raise HttpProblem(
                404, "Collection not found", f"no collection {request.path_params['collection']!r}"
            )
        if read and not collection.readable_by(account):
            raise HttpProblem(
                403, "Forbidden", f"collection {collection.alias!r} cannot be read by this account"
            )
        return collection

    async def collection(self, request: Request, account: Account) -> Response:
        """One collection (§5.2)."""
        return taxii_response(self._collection(request, account, read=False).resource(account))

    async def _page(
        self, request: Request, account: Account, query: ObjectQuery
    ) -> tuple[list[Entry], bool]:
        collection = self._collection(request, account, read=True)
        try:
            page = await collect(self.feed, self.sharer, collection, account, query)
        except DTIMError as exc:
            raise HttpProblem(
                500, "Server error", f"the collection could not be read: {exc}"
            ) from exc
        return page.entries, page.more

    def _paged(self, body: StixObject, entries: list[Entry], more: bool) -> Response:
        headers: dict[str, str] = {}
        if entries:
            added = [e.date_added for e in entries]
            headers["X-TAXII-Date-Added-First"] = min(added)
            headers["X-TAXII-Date-Added-Last"] = max(added)
        if more and entries:
            body["more"] = True
            body["next"] = encode_cursor(entries[-1].cursor)
        elif entries:
            body["more"] = False
        return taxii_response(body, headers=headers)

    async def objects(self, request: Request, account: Account) -> Response:
        """Get objects (§5.4) or add objects (§5.5)."""
        if request.method == "POST":
            return await self._add(request, account)
        query = parse_query(request, self.settings.max_page_size)
        entries, more = await self._page(request, account, query)
        return self._paged({"objects": [e.obj for e in entries]} if entries else {}, entries, more)

    async def manifest(self, request: Request, account: Account) -> Response:
        """Manifest (§5.3)."""
        query = parse_query(request, self.settings.max_page_size)
        entries, more = await self._page(request, account, query)
        rows = [
            {
                "id": e.obj["id"],
                "date_added": e.date_added,
                "version": e.version,
                "media_type": STIX_MEDIA_TYPE,
            }
            for e in entries
        ]
        return self._paged({"objects": rows} if rows else {}, entries, more)

    async def _one(self, request: Request, account: Account) -> tuple[list[Entry], bool]:
        object_id = request.path_params["object"]
        query = parse_query(request, self.settings.max_page_size, object_id=object_id)
        entries, more = await self._page(request, account, query)
        if not entries and query.after == (-1, -1):
            raise HttpProblem(
                404, "Object not found", f"no object {object_id!r} in this collection"
            )
        return entries, more

    async def object(self, request: Request, account: Account) -> Response:
        """Get an object (§5.6): every version (DTIM keeps the current one)."""
        entries, more = await self._one(request, account)
        return self._paged({"objects": [e.obj for e in entries]}, entries, more)

    async def versions(self, request: Request, account: Account) -> Response:
        """Get object versions (§5.8)."""
        entries, more = await self._one(request, account)
        return self._paged({"versions": [e.version for e in entries]}, entries, more)

    async def _add(self, request: Request, account: Account) -> Response:
        collection = self._collection(request, account, read=False)
        if not (collection.can_write and account.can_write):
            raise HttpProblem(
                403, "Forbidden", f"collection {collection.alias!r} is not writable by this account"
            )
        envelope = await read_envelope(request, self.settings.max_content_length)
        if isinstance(envelope, dict) and "objects" not in envelope:
            # An empty envelope is a fine answer to a GET, but a POST of one adds nothing:
            # a client sending it has lost its objects on the way (the API says "required").
            raise HttpProblem(422, "Unprocessable envelope", "an envelope to add needs 'objects'")
        try:
            objects = bundle_objects(envelope)
        except StixError as exc:
            raise HttpProblem(422, "Unprocessable envelope", str(exc)) from None
        now = self.clock.now()
        intake = take_in(
            objects,
            now=now,
            sources=(f"taxii-inbox:{account.name}",),
            default_tlp=self.settings.default_tlp,
        )
        if self.accept is not None:
            intake.refuse(self.accept)
        if intake.indicators:
            try:
                await self.feed.ingest(intake.indicators)
            except DTIMError as exc:
                raise HttpProblem(500, "Not stored", f"nothing was stored: {exc}") from exc
        status_id = _status_id()
        body: StixObject = {
            "id": status_id,
            "status": "complete",
            "request_timestamp": iso(now),
            "total_count": len(objects),
            "success_count": len(intake.successes),
            "successes": [{"id": o.id, "version": o.version} for o in intake.successes],
            "failure_count": len(intake.failures),
            "failures": [
                {"id": o.id, "version": o.version, "message": o.message} for o in intake.failures
            ],
            "pending_count": 0,
            "pendings": [],
        }
        self._statuses[status_id] = _Status(account.name, body)
        while len(self._statuses) > STATUS_KEEP:
            self._statuses.popitem(last=False)
        return taxii_response(body, status=202)


async def _routing_problem(_request: Request, exc: Exception) -> Response:
    """No route for the path (404) or the method (405): a TAXII error message too."""
    assert isinstance(exc, HTTPException)  # nosec B101  # registered for HTTPException only
    title = HTTPStatus(exc.status_code).phrase
    description = {404: "no TAXII endpoint at this path", 405: "method not allowed here"}.get(
        exc.status_code, str(exc.detail)
    )
    headers = dict(exc.headers or {})
    return problem_response(HttpProblem(exc.status_code, title, description, headers))


def _status_id() -> str:
    return str(uuid.uuid4())
