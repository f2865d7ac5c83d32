from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from dtim.api.metrics import metrics_router
from dtim.metrics import Metrics
from dtim.model import make_indicator
from dtim.store import Store


async def test_metrics_parse_with_the_prometheus_parser(store: Store) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    await store.upsert_indicators(
        [
            make_indicator("198.51.100.1", now=now, tlp="amber", sources=["ufw"]),
            make_indicator("evil.example", now=now),
        ]
    )
    registry = Metrics()
    registry.declare("dtim_gossip_sessions_total", "counter", "Gossip sessions.")
    registry.inc("dtim_gossip_sessions_total", 41, peer="ab12", result="ok")
    registry.inc("dtim_gossip_sessions_total", peer="ab12", result="ok")
    await store.set_state(
        "watchers.stats",
        {"ufw": {"lines": 42, "parse_errors": 3, "sightings": 5, "problems": {"/x": "missing"}}},
    )
    registry.inc("dtim_requests_rejected_total", reason='bad "signature"\nnew')
    app = FastAPI()
    app.include_router(metrics_router(store, registry))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://admin"
    ) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert samples[("dtim_gossip_sessions_total", (("peer", "ab12"), ("result", "ok")))] == 42
    assert samples[("dtim_watcher_lines_total", (("watcher", "ufw"),))] == 42
    assert samples[("dtim_watcher_parse_errors_total", (("watcher", "ufw"),))] == 3
    assert samples[("dtim_watcher_problems", (("watcher", "ufw"),))] == 1
    assert samples[("dtim_indicators", (("type", "ipv4"),))] == 1
    assert samples[("dtim_indicators_by_tlp", (("tlp", "amber"),))] == 1
    assert samples[("dtim_indicators_by_source", (("source", "ufw"),))] == 1
    assert samples[("dtim_store_size_bytes", ())] >= 4096  # at least one page of a real database
    assert samples[("dtim_requests_rejected_total", (("reason", 'bad "signature"\nnew'),))] == 1
