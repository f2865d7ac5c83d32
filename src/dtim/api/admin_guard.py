"""Request-level admin checks: who is asking (session or API token) and the CSRF token.

Pages and the JSON API share these. A request made with the session cookie that
changes state (POST, PUT, PATCH, DELETE) must carry the session's CSRF token, as
the ``X-CSRF-Token`` header or the ``csrf_token`` form field. A bearer token
needs none: browsers never attach it on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from dtim.api.auth import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, AdminAuth, Session
from dtim.errors import DTIMError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotAuthenticatedError(DTIMError):
    """Neither a live session nor a valid API token came with the request."""


class CsrfError(DTIMError):
    """A state-changing request with the session cookie lacked the right CSRF token."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made the request: ``session`` (a browser) or ``token`` (a script)."""

    kind: str
    session: Session | None = None


def current_session(request: Request, auth: AdminAuth) -> Session | None:
    """The live session of the request's cookie, or None."""
    return auth.session(request.cookies.get(SESSION_COOKIE))


def bearer_token(request: Request) -> str | None:
    """The ``Authorization: Bearer`` token, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def authenticate(request: Request, auth: AdminAuth) -> Principal:
    """Check the request's credentials and, for state changes by a browser, its CSRF token.

    Raises:
        NotAuthenticatedError: no session and no valid token.
        CsrfError: a state-changing session request without the session's CSRF token.
    """
    token = bearer_token(request)
    if token is not None:
        if auth.token_ok(token):
            return Principal("token")
        raise NotAuthenticatedError("invalid API token")
    session = current_session(request, auth)
    if session is None:
        raise NotAuthenticatedError("log in first (or send an admin API token)")
    if request.method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER)
        content_type = request.headers.get("content-type", "")
        if presented is None and content_type.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            field = form.get(CSRF_FIELD)
            presented = field if isinstance(field, str) else None
        if not auth.csrf_ok(session, presented):
            raise CsrfError("missing or wrong CSRF token; reload the page and try again")
    return Principal("session", session)
