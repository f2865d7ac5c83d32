"""``POST /api/v1/sensors/sightings``: remote sensors submit their sightings to the node.

Mounted on the admin listener. Every request carries a sensor token
(``Authorization: Bearer dtims_...``, made with ``dtim sensor token add``);
tokens are stored hashed and compared in constant time, and a revoked one is
refused on its next request. The body is capped; batches a sensor sends again
(it did not hear the answer) are recognised by their ids and not counted
twice (for 30 days; a batch the sensor buffered more than 29 days ago is
refused, since the node may have forgotten it). Errors are JSON:
``{"error": ..., "reason": ...}`` with 400 (bad body or too old a batch,
naming the field), 401 (no or wrong token), 403 (revoked), 413 (too large).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dtim.api.admin_guard import bearer_token
from dtim.api.errors import error_body
from dtim.errors import StoreError, ValidationError
from dtim.model import Clock, Sighting, SystemClock
from dtim.sensor.tokens import secret_matches, split_token
from dtim.sensor.wire import WireBatch, decode_request
from dtim.store import Store
from dtim.store.sensors import BATCH_MAX_AGE, SensorStore, SensorToken

SIGHTINGS_PATH = "/api/v1/sensors/sightings"
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


class BatchSink(Protocol):
    """Where sensor batches are committed (``dtim.service.StoreSink`` seals their evidence)."""

    async def commit_batches(
        self, sensor_id: str, batches: Sequence[WireBatch], now: datetime
    ) -> list[bool]:
        """Commit each batch not seen before; per batch, True when it was new."""
        ...


class _Refused(Exception):
    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _Refused(413, "too large", f"the body is limited to {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, "too large", f"the body is limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _sensor(request: Request, sensors: SensorStore) -> SensorToken:
    presented = bearer_token(request)
    if presented is None:
        raise _Refused(401, "unauthorized", "send a sensor token (Authorization: Bearer ...)")
    parts = split_token(presented)
    known = None if parts is None else await sensors.token(parts[0])
    # Compare even for unknown ids, so timing does not tell which ids exist.
    secret = parts[1] if parts else presented
    matched = secret_matches(secret, None if known is None else known.secret_hash)
    if known is None or not matched:
        raise _Refused(401, "unauthorized", "invalid sensor token")
    if not known.active:
        raise _Refused(403, "refused", f"the token of sensor {known.name!r} was revoked")
    return known


def refuse_stale(batches: Sequence[WireBatch], now: datetime) -> None:
    """Refuse a batch buffered too long ago for the node to know whether it took it before.

    Raises:
        ValidationError: naming the first batch whose ``created`` is older than
            :data:`~dtim.store.sensors.BATCH_MAX_AGE`.
    """
    oldest_taken = now - BATCH_MAX_AGE
    for index, batch in enumerate(batches):
        if batch.created is not None and batch.created < oldest_taken:
            raise ValidationError(
                f"batches[{index}].created",
                f"buffered more than {BATCH_MAX_AGE.days} days ago: the node no longer "
                "knows whether it took this batch before",
            )


def _tagged(sighting: Sighting, sensor: str) -> Sighting:
    details = {**sighting.evidence.details, "sensor": sensor}
    return replace(sighting, evidence=replace(sighting.evidence, details=details))


def sensor_router(
    store: Store,
    sink: BatchSink,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    clock: Clock | None = None,
) -> APIRouter:
    """The sensors' route over a connected store, committing through ``sink``.

    Args:
        store: where sensor tokens are looked up.
        sink: commits the batches (evidence sealed, each batch at most once).
        max_body_bytes: larger bodies get 413 before they are read.
    """
    sensors = SensorStore(store)
    now = (clock or SystemClock()).now
    router = APIRouter(tags=["sensors"])

    @router.post(SIGHTINGS_PATH, response_model=None)
    async def submit(request: Request) -> JSONResponse:
        try:
            sensor = await _sensor(request, sensors)
            raw = await _body(request, max_body_bytes)
            try:
                batches = decode_request(orjson.loads(raw))
                refuse_stale(batches, now())
            except orjson.JSONDecodeError as exc:
                raise _Refused(400, "invalid request", f"body: not JSON ({exc})") from None
        except _Refused as refused:
            return JSONResponse(error_body(refused.error, refused.reason), refused.status)
        except ValidationError as exc:
            return JSONResponse(error_body("invalid request", exc.reason, field=exc.field), 400)
        tagged = [
            WireBatch(b.batch_id, tuple(_tagged(s, sensor.name) for s in b.sightings))
            for b in batches
        ]
        try:
            fresh = await sink.commit_batches(sensor.id, tagged, now())
        except StoreError as exc:  # nothing was committed; the sensor keeps the batches
            return JSONResponse(error_body("store unavailable", str(exc)), 503)
        return JSONResponse(
            {
                "sensor": sensor.name,
                "accepted": sum(fresh),
                "duplicates": len(fresh) - sum(fresh),
                "sightings": sum(
                    len(b.sightings) for b, new in zip(batches, fresh, strict=True) if new
                ),
            }
        )

    return router
