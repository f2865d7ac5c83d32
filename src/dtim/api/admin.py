"""The admin JSON API under ``/api/admin``: indicators, peers, audit log, settings and keys.

Every route needs a session (with CSRF token for changes) or an admin API token.
Errors are JSON: ``{"error": message, "field": name}`` with 400 (bad input),
401 (not logged in), 403 (CSRF), 404 (unknown id).
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from dtim.api.admin_detail import IndicatorDetail
from dtim.api.admin_guard import Principal, authenticate
from dtim.api.admin_ops import AdminOps, Overview
from dtim.api.auth import AdminAuth
from dtim.errors import ValidationError
from dtim.model import Indicator, JsonObject, JsonValue, Peer
from dtim.model.clock import iso
from dtim.model.text import NUL_REASON, holds_nul
from dtim.store import IndicatorSearch, SortKey

MAX_AGE_DAYS = 36_500
"""The longest ``max_age_days`` a search takes (a century; further back is before any data)."""


class AdminErrorModel(BaseModel):
    """The JSON body of every admin API error."""

    error: str
    field: str | None = None


ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": AdminErrorModel, "description": text}
    for code, text in {
        400: "Bad input; field names the parameter or body member at fault",
        401: "No session and no valid admin API token",
        403: "A session request that changes state without its CSRF token",
        404: "No indicator or peer with that id",
    }.items()
}
"""The error answers every admin API route may give (documented in the OpenAPI document)."""


class AdminBody(BaseModel):
    """Base of the admin API's request bodies: no text member may hold a NUL character."""

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if holds_nul(value):
            raise PydanticCustomError("nul_character", NUL_REASON)
        return value


class NewIndicator(AdminBody):
    """Body of ``POST /api/admin/indicators``."""

    value: str
    type: str | None = None
    confidence: int = 50
    tlp: str = "green"
    scope: str = "private"
    recipients: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class IndicatorEdit(AdminBody):
    """Body of ``PATCH /api/admin/indicators/{id}``: only the fields given change."""

    tlp: str | None = None
    scope: str | None = None
    recipients: list[str] | None = None


class VerdictBody(AdminBody):
    """Body of ``POST /api/admin/indicators/{id}/verdict``."""

    verdict: str = Field(description="false-positive, revoked or confirmed")
    reason: str = ""
    confidence: int = Field(100, description="What a confirmed verdict pins (0-100)")


class NewPeer(AdminBody):
    """Body of ``POST /api/admin/peers``."""

    endpoint: str
    groups: list[str] = Field(default_factory=list)


class Approval(AdminBody):
    """Body of ``POST /api/admin/peers/{id}/approve``: the fingerprint the admin compared."""

    fingerprint: str


class Groups(AdminBody):
    """Body of ``PUT /api/admin/peers/{id}/groups``."""

    groups: list[str]


def search_from_params(
    *,
    q: str = "",
    type_: str = "",
    tlp: str = "",
    source: str = "",
    min_confidence: str = "",
    max_confidence: str = "",
    max_age_days: str = "",
    sort: str = "changed",
    order: str = "desc",
    cursor: str = "",
    limit: int = 50,
    now: Any,
) -> IndicatorSearch:
    """Build a search from query parameters (the API's and the page's are the same).

    Raises:
        ValidationError: naming the parameter that is wrong.
    """
    try:
        sort_key = SortKey(sort or "changed")
    except ValueError:
        choices = ", ".join(k.value for k in SortKey)
        raise ValidationError("sort", f"expected one of {choices}") from None
    if order not in ("asc", "desc", ""):
        raise ValidationError("order", "expected asc or desc")
    age = _number("max_age_days", max_age_days)
    if age is not None and age > MAX_AGE_DAYS:
        raise ValidationError("max_age_days", f"at most {MAX_AGE_DAYS} days")
    return IndicatorSearch(
        text=q,
        type=type_ or None,
        tlp=tlp or None,
        source=source or None,
        min_confidence=_whole("min_confidence", min_confidence),
        max_confidence=_whole("max_confidence", max_confidence),
        seen_after=None if age is None else now - timedelta(days=age),
        sort=sort_key,
        descending=order != "asc",
        cursor=cursor or None,
        limit=limit,
    )


def _number(name: str, raw: str) -> float | None:
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(name, f"expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValidationError(name, f"expected a finite number, got {raw!r}")
    if value < 0:
        raise ValidationError(name, "must not be negative")
    return value


def _whole(name: str, raw: str) -> int | None:
    value = _number(name, raw)
    if value is None:
        return None
    if value != int(value) or value > 100:
        raise ValidationError(name, "expected a whole number 0-100")
    return int(value)


def peer_json(peer: Peer) -> JsonObject:
    """A peer as the API shows it."""
    return {
        "id": peer.id,
        "endpoint": peer.endpoint,
        "fingerprint": peer.fingerprint,
        "status": peer.status.value,
        "groups": list(peer.groups),
        "score": peer.score,
        "last_contact": None if peer.last_contact is None else iso(peer.last_contact),
        "added_at": iso(peer.added_at),
        "source": peer.source,
    }


def detail_json(detail: IndicatorDetail) -> JsonObject:
    """The detail view as JSON (evidence included: admin only)."""
    return {
        "indicator": detail.indicator.to_json(),
        "confidence_now": detail.confidence_now,
        "valid_until": iso(detail.valid_until),
        "lifetime_days": detail.lifetime_days,
        "curve": [[days, round(score, 2)] for days, score in detail.curve],
        "privacy": [{"label": label, **exp.to_json()} for label, exp in detail.explanations],
        "history": [
            {"at": iso(e.at), "action": e.action, "actor": e.actor, "detail": e.detail}
            for e in detail.events
        ],
        "sightings": [
            {
                "observed_at": iso(s.observed_at),
                "source": s.source,
                "rule": s.rule,
                "count": s.count,
                "evidence": None if s.evidence is None else s.evidence.to_json(),
                "problem": s.problem,
            }
            for s in detail.sightings
        ],
    }


def overview_json(view: Overview) -> JsonObject:
    """The overview as JSON."""
    return {
        "node_id": view.node_id,
        "fingerprint": view.fingerprint,
        "uptime_seconds": round(view.uptime_seconds, 1),
        "counts": {
            "total": view.counts.total,
            "by_type": dict(view.counts.by_type),
            "by_tlp": dict(view.counts.by_tlp),
            "by_source": dict(view.counts.by_source),
        },
        "new_per_hour": [
            {"hour": iso(h.hour), "source": h.source, "count": h.count} for h in view.stats.hourly
        ],
        "confidence_histogram": list(view.stats.confidence_histogram),
        "received": view.stats.by_origin.get("received", 0),
        "local": view.stats.by_origin.get("local", 0),
        "shared_last_7_days": view.shared_last_7_days,
        "peers": dict(view.peers),
        "gossip": dict(view.gossip),
    }


def _indicators(items: tuple[Indicator, ...]) -> list[JsonValue]:
    return [item.to_json() for item in items]


def admin_api_router(ops: AdminOps, auth: AdminAuth) -> APIRouter:
    """The ``/api/admin`` routes over ``ops``, guarded by ``auth``."""

    async def guard(request: Request) -> Principal:
        return await authenticate(request, auth)

    router = APIRouter(
        prefix="/api/admin", tags=["admin"], dependencies=[Depends(guard)], responses=ADMIN_ERRORS
    )

    @router.get("/overview", response_model=None)
    async def overview() -> JsonObject:
        return overview_json(await ops.overview())

    @router.get("/indicators", response_model=None)
    async def list_indicators(
        q: str = "",
        type: Annotated[str, Query()] = "",  # the public parameter name
        tlp: str = "",
        source: str = "",
        min_confidence: str = "",
        max_confidence: str = "",
        max_age_days: str = "",
        sort: str = "changed",
        order: str = "desc",
        cursor: str = "",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> JsonObject:
        search = search_from_params(
            q=q,
            type_=type,
            tlp=tlp,
            source=source,
            min_confidence=min_confidence,
            max_confidence=max_confidence,
            max_age_days=max_age_days,
            sort=sort,
            order=order,
            cursor=cursor,
            limit=limit,
            now=ops.ctx.clock.now(),
        )
        page = await ops.search(search)
        return {
            "items": _indicators(page.items),
            "next_cursor": page.next_cursor,
            "mode": page.mode,
        }

    @router.post("/indicators", status_code=201, response_model=None)
    async def add_indicator(body: NewIndicator) -> JsonObject:
        added = await ops.add_indicator(
            body.value,
            body.type,
            confidence=body.confidence,
            tlp=body.tlp,
            scope=body.scope,
            recipients=body.recipients,
            tags=body.tags,
        )
        return added.to_json()

    @router.get("/indicators/{indicator_id}", response_model=None)
    async def show_indicator(indicator_id: str) -> JsonObject:
        return detail_json(await ops.detail(indicator_id))

    @router.patch("/indicators/{indicator_id}", response_model=None)
    async def edit_indicator(indicator_id: str, body: IndicatorEdit) -> JsonObject:
        edited = await ops.edit_indicator(
            indicator_id, tlp=body.tlp, scope=body.scope, recipients=body.recipients
        )
        return edited.to_json()

    @router.delete("/indicators/{indicator_id}", response_model=None)
    async def delete_indicator(indicator_id: str) -> JsonObject:
        await ops.delete_indicator(indicator_id)
        return {"deleted": indicator_id}

    @router.post("/indicators/{indicator_id}/verdict", response_model=None)
    async def indicator_verdict(indicator_id: str, body: VerdictBody) -> JsonObject:
        done = await ops.set_verdict(
            indicator_id, body.verdict, reason=body.reason, confidence=body.confidence
        )
        return done.to_json()

    @router.get("/peers", response_model=None)
    async def list_peers() -> JsonObject:
        grouped = await ops.peers()
        return {status: [peer_json(p) for p in peers] for status, peers in grouped.items()}

    @router.post("/peers", status_code=201, response_model=None)
    async def add_peer(body: NewPeer) -> JsonObject:
        return peer_json(await ops.add_peer(body.endpoint, body.groups))

    @router.post("/peers/{peer_id}/approve", response_model=None)
    async def approve_peer(peer_id: str, body: Approval) -> JsonObject:
        return peer_json(await ops.approve_peer(peer_id, body.fingerprint))

    @router.post("/peers/{peer_id}/reject", response_model=None)
    async def reject_peer(peer_id: str) -> JsonObject:
        return peer_json(await ops.reject_peer(peer_id))

    @router.post("/peers/{peer_id}/revoke", response_model=None)
    async def revoke_peer(peer_id: str) -> JsonObject:
        return peer_json(await ops.revoke_peer(peer_id))

    @router.put("/peers/{peer_id}/groups", response_model=None)
    async def peer_groups(peer_id: str, body: Groups) -> JsonObject:
        return peer_json(await ops.set_peer_groups(peer_id, body.groups))

    @router.get("/registry", response_model=None)
    async def registry() -> JsonObject:
        return dict(await ops.registry())

    @router.get("/audit", response_model=None)
    async def audit(
        day: Annotated[str, Query(alias="date")] = "", q: str = "", event: str = ""
    ) -> JsonObject:
        chosen = _day(day, ops.ctx.clock.now().date())
        records = await ops.audit_records(chosen, q, event)
        days = [d.isoformat() for d in await ops.audit_days()]
        return {"date": chosen.isoformat(), "days": list(days), "records": list(records)}

    @router.get("/settings", response_model=None)
    async def settings() -> JsonObject:
        return {name: dict(table) for name, table in ops.settings().items()}

    @router.get("/keys", response_model=None)
    async def keys() -> JsonObject:
        return {
            "rotation_days": ops.ctx.key_rotation_days,
            "keys": [
                {
                    "kind": k.kind,
                    "last_rotated": None if k.last_rotated is None else iso(k.last_rotated),
                    "age_days": None if k.age_days is None else round(k.age_days, 2),
                    "due": k.due,
                }
                for k in await ops.key_ages()
            ],
        }

    @router.post("/keys/{kind}/rotate", response_model=None)
    async def rotate_key(kind: str) -> JsonObject:
        return {"rotated": kind, "result": dict(await ops.rotate_key(kind))}

    return router


def _day(raw: str, today: date) -> date:
    if not raw:
        return today
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError("date", f"expected YYYY-MM-DD, got {raw!r}") from None
