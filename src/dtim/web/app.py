"""The admin listener's application: dashboard pages, login, static files and the admin API.

``create_admin_app(context)`` is what ``service.py`` mounts on 127.0.0.1:3031.
Nothing is loaded from outside: templates, CSS and the one small script ship in
this package, and charts are drawn as SVG on the server.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dtim import __version__
from dtim.api.admin import admin_api_router
from dtim.api.admin_guard import CsrfError, NotAuthenticatedError, current_session
from dtim.api.admin_ops import AdminContext, AdminOps, NotFoundError
from dtim.api.auth import SESSION_COOKIE, AdminAuth, AuthPolicy, LoginRefused
from dtim.api.text_input import plain_path_and_query
from dtim.errors import DTIMError, ValidationError
from dtim.web.indicator_rows import indicator_rows
from dtim.web.options import options
from dtim.web.pages import add_pages

HERE = Path(__file__).parent
LOGIN_CSRF_COOKIE = "dtim_login_csrf"
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_admin_app(
    context: AdminContext,
    *,
    auth_policy: AuthPolicy | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build the dashboard and admin API over ``context``.

    Args:
        context: the node's store, keys, audit log, settings and providers.
        auth_policy: lock-out and session limits; ``secure_cookie=True`` when served over TLS.
        routers: further routers to mount as they are (health, metrics).
    """
    app = FastAPI(
        title="DTIM admin",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(plain_path_and_query)],
        # DTIM exports no OpenTelemetry (it has /metrics); off, no request asks
        # the global providers whether anyone listens.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    auth = AdminAuth(context.keys_dir, auth_policy, context.clock)
    ops = AdminOps(context)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.auto_reload = False  # they ship in the package: no stat() per page
    templates.env.globals["version"] = __version__
    templates.env.filters["indicator_rows"] = indicator_rows
    templates.env.globals["options"] = options  # the indicator and audit-log pages' selects
    app.state.auth = auth
    app.state.ops = ops
    # Pages first: routes are tried in order, and an included router's matching
    # costs a page more than its own route does.
    add_pages(app, ops, auth, templates)

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/") or "application/json" in request.headers.get(
            "accept", ""
        )

    def error_page(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        session = current_session(request, auth)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "message": message, "session": session},
            status_code=status,
        )

    @app.exception_handler(NotAuthenticatedError)
    async def not_authenticated(request: Request, exc: NotAuthenticatedError) -> Response:
        if wants_json(request):
            return JSONResponse(
                {"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(CsrfError)
    async def csrf_failed(request: Request, exc: CsrfError) -> Response:
        return error_page(request, 403, str(exc))

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        return error_page(request, 404, str(exc))

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> Response:
        if wants_json(request):
            return JSONResponse({"error": exc.reason, "field": exc.field}, status_code=400)
        return error_page(request, 400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse(
            {"error": first.get("msg", "invalid request"), "field": field}, status_code=400
        )

    @app.exception_handler(DTIMError)
    async def failed(request: Request, exc: DTIMError) -> Response:
        return error_page(request, 500, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # Unknown paths, wrong methods, unreadable bodies: the same JSON (or page) as the rest.
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        response = error_page(request, exc.status_code, message)
        response.headers.update(exc.headers or {})
        return response

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/") -> Response:  # query name
        if current_session(request, auth) is not None:
            return RedirectResponse(_safe_next(next), status_code=303)
        return _login_page(request, templates, auth, next=next)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        target = _safe_next(str(form.get("next") or "/"))
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        sent = str(form.get("csrf_token") or "")
        if not cookie or not secrets.compare_digest(cookie, sent):
            return _login_page(
                request,
                templates,
                auth,
                next=target,
                error="the login form expired; try again",
                status=403,
            )
        client = request.client.host if request.client else "unknown"
        try:
            session = await auth.login(str(form.get("password") or ""), client)
        except LoginRefused as exc:
            ops.audit("admin_login_failed", client=client, reason=str(exc))
            return _login_page(request, templates, auth, next=target, error=str(exc), status=401)
        ops.audit("admin_login", client=client)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            session.id,
            httponly=True,
            samesite="strict",
            secure=auth.policy.secure_cookie,
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        session = current_session(request, auth)
        if session is not None:
            form = await request.form()
            token = form.get("csrf_token")
            if not auth.csrf_ok(session, token if isinstance(token, str) else None):
                raise CsrfError("missing or wrong CSRF token; reload the page and try again")
            auth.logout(session.id)
            ops.audit("admin_logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(admin_api_router(ops, auth))
    for router in routers:
        app.include_router(router)
    return app


class SecurityHeaders:
    """Pure ASGI middleware: CSP, no framing, no sniffing, no referrer; pages are not cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", _CSP)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                if not cacheable:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _safe_next(target: str) -> str:
    # Only local paths: never redirect a fresh login to another site.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request,
    templates: Jinja2Templates,
    auth: AdminAuth,
    *,
    next: str,  # the form field's name
    error: str = "",
    status: int = 200,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"csrf_token": token, "next": _safe_next(next), "error": error, "session": None},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=auth.policy.secure_cookie,
        path="/login",
    )
    return response
