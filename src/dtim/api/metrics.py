"""``/metrics`` on the admin listener: process counters plus store figures read at scrape time."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from dtim.metrics import METRICS, Labels, Metrics
from dtim.model import JsonValue
from dtim.store import Store
from dtim.watchers.supervisor import STATS_STATE_KEY

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_router(store: Store, registry: Metrics = METRICS) -> APIRouter:
    """A router serving the Prometheus text format."""
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        counts = await store.counts()
        by_type: dict[Labels, float] = {
            (("type", kind),): float(n) for kind, n in counts.by_type.items()
        }
        by_tlp: dict[Labels, float] = {
            (("tlp", tlp),): float(n) for tlp, n in counts.by_tlp.items()
        }
        by_source: dict[Labels, float] = {
            (("source", source),): float(n) for source, n in counts.by_source.items()
        }
        seq: dict[Labels, float] = {(): float(await store.last_seq())}
        size: dict[Labels, float] = {(): float(await store.size_bytes())}
        watchers = watcher_series(await store.get_state(STATS_STATE_KEY))
        text = registry.render(
            [
                ("dtim_indicators", "gauge", "Indicators in the store by type.", by_type),
                ("dtim_indicators_by_tlp", "gauge", "Indicators in the store by TLP.", by_tlp),
                (
                    "dtim_indicators_by_source",
                    "gauge",
                    "Indicators in the store by source.",
                    by_source,
                ),
                ("dtim_store_changes", "counter", "Store-wide change counter.", seq),
                ("dtim_store_size_bytes", "gauge", "Bytes the store takes in its database.", size),
                *watchers,
            ]
        )
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    return router


_WATCHER_COUNTERS = (
    ("lines", "dtim_watcher_lines_total", "Log lines read, by watcher."),
    ("parse_errors", "dtim_watcher_parse_errors_total", "Malformed lines skipped, by watcher."),
    ("sightings", "dtim_watcher_sightings_total", "Sightings committed, by watcher."),
)


def watcher_series(
    stats: JsonValue,
) -> list[tuple[str, str, str, dict[Labels, float]]]:
    """The watchers' counters (as the running node published them) as metric families."""
    families: list[tuple[str, str, str, dict[Labels, float]]] = []
    per_watcher = stats if isinstance(stats, dict) else {}
    for field, name, help_text in _WATCHER_COUNTERS:
        series: dict[Labels, float] = {}
        for watcher, counters in per_watcher.items():
            value = counters.get(field) if isinstance(counters, dict) else None
            if isinstance(value, int | float):
                series[(("watcher", watcher),)] = float(value)
        families.append((name, "counter", help_text, series))
    problems: dict[Labels, float] = {
        (("watcher", watcher),): float(len(c.get("problems") or {}))  # type: ignore[arg-type]
        for watcher, c in per_watcher.items()
        if isinstance(c, dict)
    }
    families.append(
        ("dtim_watcher_problems", "gauge", "Paths a watcher cannot read now.", problems)
    )
    return families
