"""Dashboard pages: overview, indicators, indicator detail, peers, audit log, settings.

Every page needs a session (else a redirect to /login); every form posts the
session's CSRF token. After a change the browser is redirected (POST/redirect/GET)
with a short notice in the query string.

Pages are plain Starlette routes added to the app's own route table, ahead of
the admin API's routers: they take no typed parameters and stay out of the
API's schema, so FastAPI's parameter and dependency handling, and the matching
of an included router, did nothing for them but cost time on every page. They
therefore refuse NUL characters in the path and query themselves, as the admin
app's dependency does for its FastAPI routes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from dtim.api.admin import search_from_params
from dtim.api.admin_guard import NotAuthenticatedError, authenticate, current_session
from dtim.api.admin_ops import AdminOps
from dtim.api.auth import AdminAuth, Session
from dtim.api.text_input import refuse_nul_in_path_and_query
from dtim.crypto.auditlog import AuditEvent
from dtim.errors import ValidationError
from dtim.model import IndicatorType, PeerStatus, Scope, Tlp
from dtim.model.indicator import JsonValue
from dtim.model.text import refuse_nul
from dtim.privacy import PrivacyLevel
from dtim.store import SortKey
from dtim.web import charts
from dtim.web.options import options

TYPES = tuple(t.value for t in IndicatorType)
TLPS = tuple(t.value for t in Tlp)
SCOPES = tuple(s.value for s in Scope)
SORTS = tuple(k.value for k in SortKey)
ORDERS = (("desc", "descending"), ("asc", "ascending"))
AGE_CHOICES = (
    ("", "any age"),
    ("1", "last 24 hours"),
    ("7", "last 7 days"),
    ("30", "last 30 days"),
    ("90", "last 90 days"),
)
NEW_INDICATOR_SELECTS = {
    "type": options(TYPES),
    "tlp": options(TLPS, "green"),
    "scope": options(SCOPES, "private"),
}
"""The add-indicator form's selects: the same on every page, so made once."""
AUDIT_EVENTS = (
    *(e.value for e in AuditEvent),
    "admin_login",
    "admin_login_failed",
    "admin_logout",
    "indicator_added",
    "indicator_edited",
    "indicator_deleted",
    "indicator_verdict",
    "peer_groups_changed",
)


_LONG_ID = re.compile(r"[0-9a-f]{32,}")


def _shown(value: JsonValue) -> str:
    """One gossip health value as text: no Python reprs, long ids shortened."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        return value[:16] + "…" if _LONG_ID.fullmatch(value) else value
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_shown(v)}" for k, v in value.items()) or "—"
    return str(value)


def health_rows(gossip: Mapping[str, JsonValue]) -> list[tuple[str, str]]:
    """The overview's gossip health as (label, text) rows; per-peer figures are on /peers."""
    rows = []
    for key, value in gossip.items():
        if key == "peers":
            continue
        if key == "last_round" and isinstance(value, str):
            value = value[:19].replace("T", " ") + " UTC"
        rows.append((key.replace("_", " "), _shown(value)))
    return rows


Endpoint = Callable[[Request], Awaitable[Response]]


def _split(raw: object) -> list[str]:
    text = raw if isinstance(raw, str) else ""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _redirect(path: str, notice: str) -> Response:
    return RedirectResponse(f"{path}?{urlencode({'notice': notice})}", status_code=303)


def add_pages(app: FastAPI, ops: AdminOps, auth: AdminAuth, templates: Jinja2Templates) -> None:
    """Add the HTML pages over ``ops`` to ``app``'s routes, after those it already has."""

    def page_route(path: str, method: str = "GET") -> Callable[[Endpoint], Endpoint]:
        def add(endpoint: Endpoint) -> Endpoint:
            app.add_route(path, endpoint, methods=[method], include_in_schema=False)
            return endpoint

        return add

    def session_of(request: Request) -> Session:
        refuse_nul_in_path_and_query(request)
        session = current_session(request, auth)
        if session is None:
            raise NotAuthenticatedError("log in first")
        return session

    async def form_of(request: Request) -> Mapping[str, Any]:
        refuse_nul_in_path_and_query(request)
        await authenticate(request, auth)  # session and CSRF token
        form = await request.form()
        refuse_nul(form.multi_items())
        return form

    def render(
        request: Request, session: Session, name: str, page: str, **context: Any
    ) -> Response:
        context.update(session=session, page=page, notice=request.query_params.get("notice", ""))
        return templates.TemplateResponse(request, name, context)

    @page_route("/")
    async def overview(request: Request) -> Response:
        session = session_of(request)
        view = await ops.overview()
        now = ops.ctx.clock.now()
        deciles = [f"{n * 10}-{n * 10 + 9}" if n < 9 else "90-100" for n in range(10)]
        flows = [
            ("seen locally", view.stats.by_origin.get("local", 0)),
            ("received from peers", view.stats.by_origin.get("received", 0)),
            ("shared (7 days)", view.shared_last_7_days),
        ]
        return render(
            request,
            session,
            "overview.html",
            "overview",
            view=view,
            health=health_rows(view.gossip),
            hourly_chart=charts.hourly_by_source(view.stats.hourly, now=now),
            confidence_chart=charts.histogram(
                view.stats.confidence_histogram,
                label="Indicators by confidence",
                bucket_labels=deciles,
            ),
            flow_chart=charts.horizontal_bars(
                flows, label="Indicators seen locally, received and shared"
            ),
            type_chart=charts.horizontal_bars(
                sorted(view.counts.by_type.items()), label="Indicators by type"
            ),
            tlp_chart=charts.horizontal_bars(
                [(t.value, view.counts.by_tlp.get(t.value, 0)) for t in Tlp],
                label="Indicators by TLP",
            ),
            registry=await ops.registry(),
        )

    @page_route("/indicators")
    async def indicators(request: Request) -> Response:
        session = session_of(request)
        # A plain dict: a missing key costs the query's mapping a KeyError, and the
        # page asks for a dozen that are usually missing.
        params = dict(request.query_params.items())
        search = search_from_params(
            q=params.get("q", ""),
            type_=params.get("type", ""),
            tlp=params.get("tlp", ""),
            source=params.get("source", ""),
            min_confidence=params.get("min_confidence", ""),
            max_confidence=params.get("max_confidence", ""),
            max_age_days=params.get("max_age_days", ""),
            sort=params.get("sort", "changed"),
            order=params.get("order", "desc"),
            cursor=params.get("cursor", ""),
            now=ops.ctx.clock.now(),
        )
        page = await ops.search_summaries(search)
        kept = {k: v for k, v in params.items() if k not in ("cursor", "notice") and v}
        # The filters as the person left them, the selects made here: each call
        # from the template would cost more than making the whole select.
        chosen = {name: params.get(name, "") for name in ("q", "source", "min_confidence")}
        selects = {
            "type": options(TYPES, params.get("type")),
            "tlp": options(TLPS, params.get("tlp")),
            "max_age_days": options(AGE_CHOICES, params.get("max_age_days", "")),
            "sort": options(SORTS, params.get("sort", "changed")),
            "order": options(ORDERS, params.get("order")),
        }
        next_url = None
        if page.next_cursor:
            next_url = "/indicators?" + urlencode({**kept, "cursor": page.next_cursor})
        return render(
            request,
            session,
            "indicators.html",
            "indicators",
            items=page.items,
            mode=page.mode,
            chosen=chosen,
            selects=selects,
            new_selects=NEW_INDICATOR_SELECTS,
            next_url=next_url,
            first_url="/indicators?" + urlencode(kept) if search.cursor else None,
        )

    @page_route("/indicators", "POST")
    async def add_indicator(request: Request) -> Response:
        form = await form_of(request)
        added = await ops.add_indicator(
            str(form.get("value", "")),
            str(form.get("type", "")) or None,
            confidence=_confidence(form.get("confidence")),
            tlp=str(form.get("tlp", "green")),
            scope=str(form.get("scope", "private")),
            recipients=_split(form.get("recipients")),
            tags=_split(form.get("tags")),
        )
        return _redirect(f"/indicators/{added.id}", "indicator added")

    @page_route("/indicators/{indicator_id}")
    async def indicator(request: Request) -> Response:
        indicator_id = request.path_params["indicator_id"]
        session = session_of(request)
        detail = await ops.detail(indicator_id)
        return render(
            request,
            session,
            "indicator.html",
            "indicators",
            d=detail,
            curve=charts.decay_curve(
                detail.curve,
                elapsed_days=detail.elapsed_days,
                label=f"Confidence of {detail.indicator.value} over "
                f"its {detail.lifetime_days:.0f}-day lifetime",
            ),
            tlps=TLPS,
            scopes=SCOPES,
            levels=[level.value for level in PrivacyLevel],
        )

    @page_route("/indicators/{indicator_id}/edit", "POST")
    async def edit_indicator(request: Request) -> Response:
        indicator_id = request.path_params["indicator_id"]
        form = await form_of(request)
        await ops.edit_indicator(
            indicator_id,
            tlp=str(form.get("tlp", "")) or None,
            scope=str(form.get("scope", "")) or None,
            recipients=_split(form.get("recipients")),
        )
        return _redirect(f"/indicators/{indicator_id}", "marking saved")

    @page_route("/indicators/{indicator_id}/verdict", "POST")
    async def indicator_verdict(request: Request) -> Response:
        indicator_id = request.path_params["indicator_id"]
        form = await form_of(request)
        done = await ops.set_verdict(
            indicator_id, str(form.get("verdict", "")), reason=str(form.get("reason", ""))
        )
        notice = f"verdict {done.verdict.value} recorded"
        if done.tombstone is not None:
            notice += "; every peer gets the tombstone"
        elif done.withheld:
            notice += f"; {done.withheld}"
        return _redirect(f"/indicators/{indicator_id}", notice)

    @page_route("/indicators/{indicator_id}/delete", "POST")
    async def delete_indicator(request: Request) -> Response:
        indicator_id = request.path_params["indicator_id"]
        form = await form_of(request)
        if form.get("confirm") != "yes":
            raise ValidationError("confirm", "tick the box to confirm the deletion")
        await ops.delete_indicator(indicator_id)
        return _redirect("/indicators", "indicator deleted")

    @page_route("/peers")
    async def peers(request: Request) -> Response:
        session = session_of(request)
        gossip = {}
        if ops.ctx.gossip_status is not None:
            gossip = dict(await ops.ctx.gossip_status())
        stats = gossip.get("peers") if isinstance(gossip.get("peers"), dict) else {}
        return render(
            request,
            session,
            "peers.html",
            "peers",
            grouped=await ops.peers(),
            statuses=[s.value for s in PeerStatus],
            peer_stats=stats,
            registry=await ops.registry(),
        )

    @page_route("/peers", "POST")
    async def add_peer(request: Request) -> Response:
        form = await form_of(request)
        peer = await ops.add_peer(str(form.get("endpoint", "")), _split(form.get("groups")))
        return _redirect("/peers", f"peer {peer.endpoint} added as pending")

    @page_route("/peers/{peer_id}/approve")
    async def approve_form(request: Request) -> Response:
        peer_id = request.path_params["peer_id"]
        session = session_of(request)
        peer = await ops.peer(peer_id)
        return render(request, session, "approve.html", "peers", peer=peer)

    @page_route("/peers/{peer_id}/approve", "POST")
    async def approve(request: Request) -> Response:
        peer_id = request.path_params["peer_id"]
        form = await form_of(request)
        peer = await ops.approve_peer(peer_id, str(form.get("fingerprint", "")))
        return _redirect("/peers", f"peer {peer.id} approved")

    @page_route("/peers/{peer_id}/{action}", "POST")
    async def peer_action(request: Request) -> Response:
        peer_id, action = request.path_params["peer_id"], request.path_params["action"]
        form = await form_of(request)
        if action == "reject":
            await ops.reject_peer(peer_id)
        elif action == "revoke":
            await ops.revoke_peer(peer_id)
        elif action == "groups":
            await ops.set_peer_groups(peer_id, _split(form.get("groups")))
        else:
            raise ValidationError("action", f"unknown peer action {action!r}")
        return _redirect("/peers", f"peer {peer_id}: {action} done")

    @page_route("/logs")
    async def logs(request: Request) -> Response:
        session = session_of(request)
        params = request.query_params
        raw_day = params.get("date", "")
        try:
            day = date.fromisoformat(raw_day) if raw_day else ops.ctx.clock.now().date()
        except ValueError:
            raise ValidationError("date", f"expected YYYY-MM-DD, got {raw_day!r}") from None
        records = await ops.audit_records(day, params.get("q", ""), params.get("event", ""))
        return render(
            request,
            session,
            "logs.html",
            "logs",
            day=day,
            records=records,
            days=await ops.audit_days(),
            q=params.get("q", ""),
            event=params.get("event", ""),
            events=AUDIT_EVENTS,
        )

    @page_route("/settings")
    async def settings(request: Request) -> Response:
        session = session_of(request)
        return render(
            request,
            session,
            "settings.html",
            "settings",
            settings=ops.settings(),
            keys=await ops.key_ages(),
            rotation_days=ops.ctx.key_rotation_days,
        )

    @page_route("/settings/keys/{kind}/rotate", "POST")
    async def rotate(request: Request) -> Response:
        kind = request.path_params["kind"]
        await form_of(request)
        await ops.rotate_key(kind)
        return _redirect("/settings", f"{kind} key rotated")


def _confidence(raw: object) -> int:
    text = raw if isinstance(raw, str) else ""
    try:
        return int(text or "50")
    except ValueError:
        raise ValidationError(
            "confidence", f"expected a whole number 0-100, got {text!r}"
        ) from None
