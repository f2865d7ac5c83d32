"""Liveness and readiness endpoints, shared by the node's listeners and the registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]
"""Returns failing components by name (empty when ready)."""


def health_router(readiness: ReadinessCheck) -> APIRouter:
    """``/healthz`` (the process answers) and ``/readyz`` (its dependencies work)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        failing = await readiness()
        if failing:
            return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ok"})

    return router
