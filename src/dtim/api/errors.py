"""Exception-to-HTTP mapping: every error of the node's APIs is a JSON document.

The body is always ``{"error": "<what>", "reason": "<why>"}`` (plus ``field``
for validation errors), the same shape the mTLS and signature guards use.
The table, most specific class first:

===========================  ======  ==================================
exception                    status  error
===========================  ======  ==================================
SignatureError               401     signature rejected
PeerRejected                 403     refused
ValidationError              400     invalid request
ProtocolError                400     protocol error
PrivacyError                 403     withheld
PeerUnreachable              502     peer unreachable
GossipError                  502     gossip failed
StoreError                   503     store unavailable
DTIMError (anything else)    500     internal error
RequestValidationError       422     invalid request
HTTPException (404, 405...)  as is   the status phrase
===========================  ======  ==================================
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from dtim.errors import (
    DTIMError,
    GossipError,
    PeerRejected,
    PeerUnreachable,
    PrivacyError,
    ProtocolError,
    SignatureError,
    StoreError,
    ValidationError,
)

log = logging.getLogger("dtim.api")

ERROR_TABLE: tuple[tuple[type[DTIMError], int, str], ...] = (
    (SignatureError, 401, "signature rejected"),
    (PeerRejected, 403, "refused"),
    (ValidationError, 400, "invalid request"),
    (ProtocolError, 400, "protocol error"),
    (PrivacyError, 403, "withheld"),
    (PeerUnreachable, 502, "peer unreachable"),
    (GossipError, 502, "gossip failed"),
    (StoreError, 503, "store unavailable"),
    (DTIMError, 500, "internal error"),
)
"""``(exception class, status, error)``; the first class that matches wins."""


class ErrorModel(BaseModel):
    """The JSON body of every error answer, for the OpenAPI document."""

    error: str
    reason: str
    field: str | None = None


def error_responses(codes: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` documenting each error status (with what causes it)."""
    return {code: {"model": ErrorModel, "description": text} for code, text in codes.items()}


class ApiError(Exception):
    """An HTTP refusal decided by a route (413, 429 ...), with the standard JSON body."""

    def __init__(self, status: int, error: str, reason: str, headers: dict[str, str] | None = None):
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers or {}
        super().__init__(f"{status} {error}: {reason}")


def error_body(error: str, reason: str, **extra: str) -> dict[str, str]:
    """The JSON body of every error answer."""
    return {"error": error, "reason": reason, **extra}


def status_for(exc: DTIMError) -> tuple[int, str]:
    """The status and error name for a DTIM exception."""
    for cls, status, error in ERROR_TABLE:
        if isinstance(exc, cls):
            return status, error
    return 500, "internal error"  # pragma: no cover  # DTIMError is last in the table


async def _dtim_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DTIMError)  # nosec B101  # registered for DTIMError only; narrows the type
    status, error = status_for(exc)
    if status >= 500:
        log.warning("request failed: %s: %s", exc.__class__.__name__, exc)
    body = error_body(error, str(exc))
    if isinstance(exc, ValidationError):
        body = error_body(error, exc.reason, field=exc.field)
    elif isinstance(exc, SignatureError):
        body = error_body(error, exc.reason)
    return JSONResponse(body, status_code=status)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # nosec B101  # registered for ApiError only; narrows the type
    return JSONResponse(error_body(exc.error, exc.reason), exc.status, headers=exc.headers)


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # nosec B101  # registered for RequestValidationError only
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    reason = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", ""))
    return JSONResponse(error_body("invalid request", reason), status_code=422)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # nosec B101  # registered for HTTPException only; narrows the type
    phrase = HTTPStatus(exc.status_code).phrase.lower()
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return JSONResponse(
        error_body(phrase, detail), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a JSON answer following :data:`ERROR_TABLE`."""
    app.add_exception_handler(DTIMError, _dtim_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
