"""The exception-to-HTTP table: every error of the node's APIs is JSON with the right status."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Query

from dtim.api.errors import ERROR_TABLE, ApiError, install_error_handlers, status_for
from dtim.errors import (
    ConfigError,
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

CASES: list[tuple[DTIMError, int, str]] = [
    (SignatureError("bad signature"), 401, "signature rejected"),
    (PeerRejected("not approved"), 403, "refused"),
    (ValidationError("value", "not an address"), 400, "invalid request"),
    (ProtocolError("truncated"), 400, "protocol error"),
    (PrivacyError("withheld"), 403, "withheld"),
    (PeerUnreachable("timeout"), 502, "peer unreachable"),
    (GossipError("failed"), 502, "gossip failed"),
    (StoreError("locked"), 503, "store unavailable"),
    (ConfigError("bad"), 500, "internal error"),
]


def app() -> FastAPI:
    api = FastAPI()
    install_error_handlers(api)

    @api.get("/raise/{index}")
    async def fail(index: int) -> None:
        raise CASES[index][0]

    @api.get("/teapot")
    async def teapot() -> None:
        raise ApiError(429, "rate limited", "slow down", {"retry-after": "3"})

    @api.get("/typed")
    async def typed(n: int = Query(ge=1)) -> dict[str, int]:
        return {"n": n}

    return api


@pytest.mark.parametrize("index", range(len(CASES)))
async def test_each_exception_maps_to_its_status_and_json(index: int) -> None:
    exc, status, error = CASES[index]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app()), base_url="http://t") as c:
        response = await c.get(f"/raise/{index}")
    assert response.status_code == status
    assert response.json()["error"] == error
    assert status_for(exc) == (status, error)
    if isinstance(exc, ValidationError):
        assert response.json() == {"error": error, "reason": "not an address", "field": "value"}


async def test_framework_errors_are_json_too() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app()), base_url="http://t") as c:
        missing = await c.get("/nowhere")
        wrong_method = await c.post("/teapot")
        invalid = await c.get("/typed?n=0")
        refused = await c.get("/teapot")
    assert (missing.status_code, missing.json()["error"]) == (404, "not found")
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method not allowed")
    assert invalid.status_code == 422
    assert invalid.json()["error"] == "invalid request"
    assert "n" in invalid.json()["reason"]
    assert refused.status_code == 429
    assert refused.json() == {"error": "rate limited", "reason": "slow down"}
    assert refused.headers["retry-after"] == "3"


def test_the_table_ends_with_the_root() -> None:
    assert ERROR_TABLE[-1][0] is DTIMError
