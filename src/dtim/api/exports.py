"""Exports over HTTP: the admin API's export endpoint and the firewall blocklist.

``GET /api/admin/export`` serves what ``dtim indicators export`` writes (STIX
bundle, CSV, plain text, JSON), to an admin session or API token.
``GET /blocklist.txt`` serves one value per line for firewalls that poll a URL
(pfSense/OPNsense URL tables, an nftables set refreshed by a script); it takes
a blocklist-only token (``dtim admin token create --blocklist``) as
``?token=`` (firewalls cannot set headers) or as a bearer token. Both pass the
privacy filter like every export, and only TLP:CLEAR and TLP:GREEN leave.
"""

from __future__ import annotations

import io
from typing import Annotated, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from dtim.api.admin_guard import authenticate, bearer_token
from dtim.api.auth import BLOCKLIST_SCOPE, AdminAuth
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
        out: None,
        stream: io.BytesIO,
    ) -> int:
        """Write the export into ``stream``; returns how many indicators were written."""
        ...


def exports_router(exporter: Exporter) -> APIRouter:
    """The admin export endpoint and the blocklist (the admin app's ``state.auth`` checks)."""
    router = APIRouter(tags=["exports"])

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
        presented = bearer_token(request) or token
        if not _auth(request).token_ok(presented, BLOCKLIST_SCOPE):
            return JSONResponse(
                {"error": "a blocklist or admin token is needed (?token= or Bearer)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
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

    return router


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
