from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import httpx
import orjson
from fastapi import FastAPI, Request, Response
from tests.servers import running_server

from dtim.integrations.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDispatcher,
    WebhookTarget,
    verify,
)
from dtim.metrics import Metrics
from dtim.model import make_indicator
from dtim.privacy import PrivacyFilter, PrivacyPolicy

SECRET = b"webhook-shared-secret"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def receiver(
    fail_first: int = 0, hang: threading.Event | None = None
) -> tuple[FastAPI, list[dict[str, object]], list[int]]:
    app = FastAPI()
    received: list[dict[str, object]] = []
    calls = [0]

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        calls[0] += 1
        body = await request.body()
        if hang is not None:
            # released by the test; the client's timeout fires first
            while not hang.is_set():  # noqa: ASYNC110  # a threading.Event, set from another thread
                await asyncio.sleep(0.05)
            return Response(status_code=504)
        if not verify(
            SECRET, request.headers[TIMESTAMP_HEADER], body, request.headers[SIGNATURE_HEADER]
        ):
            return Response(status_code=401)
        if calls[0] <= fail_first:
            return Response(status_code=500)
        received.append(orjson.loads(body))
        return Response(status_code=204)

    return app, received, calls


async def wait_for(condition: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def no_wait(_: float) -> None:
    return None


async def test_delivers_signed_payloads_and_retries_after_a_500() -> None:
    app, received, calls = receiver(fail_first=1)
    with running_server(app) as server:
        target = WebhookTarget(
            "siem", server.url("/hook"), SECRET, min_confidence=50, types=frozenset({"ipv4"})
        )
        metrics = Metrics()
        async with httpx.AsyncClient() as client:
            dispatcher = WebhookDispatcher(
                [target], PrivacyFilter(PrivacyPolicy()), client, sleep=no_wait, metrics=metrics
            )
            runner = asyncio.ensure_future(dispatcher.run())
            try:
                assert dispatcher.offer(make_indicator("45.13.7.9", now=NOW, confidence=80)) == 1
                below_minimum = make_indicator("45.13.7.10", now=NOW, confidence=10)
                assert dispatcher.offer(below_minimum) == 0
                type_filtered = make_indicator("malware-c2.xyz", now=NOW, confidence=90)
                assert dispatcher.offer(type_filtered) == 0
                red = make_indicator(
                    "45.13.7.11", now=NOW, confidence=90, tlp="red", recipients=["x"]
                )
                assert dispatcher.offer(red) == 0
                await asyncio.wait_for(dispatcher.drain(), 10)
            finally:
                runner.cancel()
    assert calls[0] == 2
    assert [item["indicator"]["value"] for item in received] == ["45.13.7.9"]  # type: ignore[index]
    assert (
        metrics.value("dtim_webhook_deliveries_total", target="siem", outcome="retry_http_500") == 1
    )
    assert metrics.value("dtim_webhook_deliveries_total", target="siem", outcome="delivered") == 1


async def test_a_hanging_receiver_never_blocks_the_node_or_other_targets() -> None:
    release = threading.Event()
    slow_app, _, slow_calls = receiver(hang=release)
    fast_app, fast_received, _ = receiver()
    try:
        with running_server(slow_app) as slow, running_server(fast_app) as fast:
            targets = [
                WebhookTarget("slow", slow.url("/hook"), SECRET),
                WebhookTarget("fast", fast.url("/hook"), SECRET),
            ]
            metrics = Metrics()
            async with httpx.AsyncClient() as client:
                dispatcher = WebhookDispatcher(
                    targets,
                    PrivacyFilter(PrivacyPolicy()),
                    client,
                    queue_size=2,
                    max_attempts=1,
                    timeout=0.5,
                    metrics=metrics,
                )
                runner = asyncio.ensure_future(dispatcher.run())
                try:
                    started = time.monotonic()
                    for n in range(5):
                        dispatcher.offer(make_indicator(f"45.13.8.{n + 1}", now=NOW))
                    assert time.monotonic() - started < 0.5  # offer never waits on a receiver
                    # the queue holds 2; the rest overflowed
                    await wait_for(lambda: len(fast_received) == 2)
                    await wait_for(
                        lambda: (
                            metrics.value(
                                "dtim_webhook_deliveries_total", target="slow", outcome="gave_up"
                            )
                            == 2
                        )
                    )
                finally:
                    runner.cancel()
            release.set()
            assert slow_calls[0] == 2
            assert (
                metrics.value(
                    "dtim_webhook_deliveries_total", target="slow", outcome="dropped_queue_full"
                )
                == 3
            )
            assert (
                metrics.value(
                    "dtim_webhook_deliveries_total", target="fast", outcome="dropped_queue_full"
                )
                == 3
            )
    finally:
        release.set()
