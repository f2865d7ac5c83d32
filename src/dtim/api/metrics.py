"""``/metrics`` on the admin listener: process counters plus store figures computed at scrape time."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from dtim.metrics import METRICS, Labels, Metrics
from dtim.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_router(store: Store, registry: Metrics = METRICS) -> APIRouter:
    """A router serving the Prometheus text format."""
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        counts = await store.counts()
        by_type: dict[Labels, float] = {(("type", kind),): float(n) for kind, n in counts.by_type.items()}
        by_tlp: dict[Labels, float] = {(("tlp", tlp),): float(n) for tlp, n in counts.by_tlp.items()}
        by_source: dict[Labels, float] = {(("source", source),): float(n) for source, n in counts.by_source.items()}
        seq: dict[Labels, float] = {(): float(await store.last_seq())}
        text = registry.render(
            [
                ("dtim_indicators", "gauge", "Indicators in the store by type.", by_type),
                ("dtim_indicators_by_tlp", "gauge", "Indicators in the store by TLP.", by_tlp),
                ("dtim_indicators_by_source", "gauge", "Indicators in the store by source.", by_source),
                ("dtim_store_changes", "counter", "Store-wide change counter.", seq),
            ]
        )
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    return router
