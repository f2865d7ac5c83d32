"""Exports over HTTP: the admin API's export endpoint and the firewall blocklist.

``GET /api/admin/export`` serves what ``dtim indicators export`` writes (STIX
bundle, CSV, plain text, JSON), to an admin session or API token.
``GET /blocklist.txt`` serves one value per line for firewalls that poll a URL
(pfSense/OPNsense URL tables, an nftables set refreshed by a script); it takes
a blocklist-only token (``dtim admin token create --blocklist``) as
``?token=`` (firewalls cannot set headers) or as a bearer token.
``GET /feeds/misp/{file}`` serves a MISP feed (``manifest.json``, ``hashes.csv``,
the event files) that a MISP instance subscribes to, with the same tokens.
Everything passes the privacy filter like every export, and only TLP:CLEAR and
TLP:GREEN leave.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from dtim.api.admin_guard import authenticate, bearer_token
from dtim.api.auth import BLOCKLIST_SCOPE, AdminAuth
from dtim.api.misp_feed import DEFAULT_MIN_AGE, HASHES, MispFeedFiles
from dtim.errors import ValidationError

BLOCKLIST_MIN_CONFIDENCE = 70
"""The default block threshold: what corroboration lets a value reach with two reporters or more."""
HTTP_FORMATS = {
    "stix": ("application/stix+json;version=2.1", "json"),
    "json": ("application/json", "json"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "txt": ("text/plain; charset=utf-8", "txt"),
}
"""Formats served over HTTP (a MISP feed is a directory: ``dtim indicators export``)."""


class Exporter(Protocol):
    """What the routes need: ``NodeRuntime.export`` writing into a binary stream."""

    async def export(
        self,
        *,
        format: str,
        level: str,
        tlps: list[str],
        groups: list[str],
        min_confidence: int | None,
        types: list[str],
        out: Path | None,
        stream: io.BytesIO | None = None,
    ) -> int:
        """Write the export into ``stream``; returns how many indicators were written."""
        ...


def exports_router(
    exporter: Exporter,
    *,
    misp_feed_dir: Path,
    store_version: Callable[[], Awaitable[int]],
    misp_min_age: float = DEFAULT_MIN_AGE,
) -> APIRouter:
    """The admin export endpoint, the blocklist and the MISP feed (the admin app's
    ``state.auth`` checks tokens)."""
    router = APIRouter(tags=["exports"])

    async def build_misp_feed(directory: Path) -> int:
        return await exporter.export(
            format="misp",
            level="moderate",
            tlps=["clear", "green"],
            groups=[],
            min_confidence=None,
            types=[],
            out=directory,
        )

    misp = MispFeedFiles(misp_feed_dir, build_misp_feed, store_version, min_age=misp_min_age)

    @router.get("/api/admin/export", response_model=None)
    async def export(
        request: Request,
        format: Annotated[str, Query(description="stix, json, csv or txt.")] = "stix",
        level: Annotated[str, Query(description="strict, moderate or open.")] = "moderate",
        tlp: Annotated[list[str] | None, Query(description="clear and/or green.")] = None,
        min_confidence: Annotated[int | None, Query(ge=0, le=100)] = None,
        type: Annotated[list[str] | None, Query(description="Indicator types.")] = None,
    ) -> Response:
        await authenticate(request, _auth(request))
        media_type, suffix = _format(format)
        stream = io.BytesIO()
        count = await exporter.export(
            format=format,
            level=level,
            tlps=_tlps(tlp),
            groups=[],
            min_confidence=min_confidence,
            types=type or [],
            out=None,
            stream=stream,
        )
        return Response(
            stream.getvalue(),
            media_type=media_type,
            headers={
                "Content-Disposition": f'attachment; filename="dtim-indicators.{suffix}"',
                "X-DTIM-Count": str(count),
            },
        )

    @router.get("/blocklist.txt", response_model=None)
    async def blocklist(
        request: Request,
        token: Annotated[str | None, Query(description="A blocklist token.")] = None,
        type: Annotated[list[str] | None, Query(description="ipv4, ipv6, cidr, domain...")] = None,
        min_confidence: Annotated[int, Query(ge=0, le=100)] = BLOCKLIST_MIN_CONFIDENCE,
    ) -> Response:
        refused = _refuse_without_feed_token(request, token)
        if refused is not None:
            return refused
        stream = io.BytesIO()
        await exporter.export(
            format="txt",
            level="strict",
            tlps=["clear", "green"],
            groups=[],
            min_confidence=min_confidence,
            types=type or [],
            out=None,
            stream=stream,
        )
        return Response(
            stream.getvalue(),
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    @router.get("/feeds/misp/{name}", response_model=None)
    async def misp_feed(
        request: Request,
        name: str,
        token: Annotated[str | None, Query(description="A blocklist or admin token.")] = None,
    ) -> Response:
        """A file of the node's MISP feed: ``manifest.json``, ``hashes.csv`` or an event."""
        refused = _refuse_without_feed_token(request, token)
        if refused is not None:
            return refused
        path = await misp.file(name)
        if path is None:
            return JSONResponse(
                {"error": f"no such file in the MISP feed: {name!r}", "field": "name"},
                status_code=404,
            )
        media_type = "text/csv; charset=utf-8" if name == HASHES else "application/json"
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-store"})

    return router


def _refuse_without_feed_token(request: Request, token: str | None) -> Response | None:
    """The 401 for a machine export (blocklist, MISP feed) without a blocklist or admin token."""
    presented = bearer_token(request) or token
    if _auth(request).token_ok(presented, BLOCKLIST_SCOPE):
        return None
    return JSONResponse(
        {"error": "a blocklist or admin token is needed (?token= or Bearer)"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _auth(request: Request) -> AdminAuth:
    auth: AdminAuth = request.app.state.auth
    return auth


def _format(name: str) -> tuple[str, str]:
    served = HTTP_FORMATS.get(name)
    if served is None:
        raise ValidationError(
            "format", f"{name!r} is not served over HTTP (one of {', '.join(HTTP_FORMATS)})"
        )
    return served


def _tlps(asked: list[str] | None) -> list[str]:
    chosen = [t.lower() for t in asked or ["clear", "green"]]
    for marking in chosen:
        if marking not in ("clear", "white", "green"):
            raise ValidationError(
                "tlp", f"only TLP:CLEAR and TLP:GREEN are exported, not {marking}"
            )
    return chosen
