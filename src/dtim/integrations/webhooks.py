"""Outgoing webhooks: indicators POSTed to a receiver, HMAC-signed, retried, never blocking.

Each target has a bounded queue and its own worker: :meth:`WebhookDispatcher.offer`
never waits, a slow or hanging receiver only fills (and then overflows) its
own queue, and every call has a timeout. Payloads are built by the privacy
filter for a ``consumer`` destination, like exports.

A receiver checks ``X-DTIM-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<X-DTIM-Timestamp>.<body>`` under the shared secret, and may refuse old
timestamps to stop replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import orjson

from dtim.metrics import METRICS, Metrics
from dtim.model import Indicator, Tlp
from dtim.privacy import Destination, PrivacyFilter, PrivacyLevel

SIGNATURE_HEADER = "X-DTIM-Signature"
TIMESTAMP_HEADER = "X-DTIM-Timestamp"


@dataclass(frozen=True)
class WebhookTarget:
    """One receiver and what it wants."""

    name: str
    url: str
    secret: bytes = field(repr=False)
    min_confidence: int = 0
    types: frozenset[str] = frozenset()
    """Empty: every type."""
    tlps: frozenset[Tlp] = frozenset({Tlp.CLEAR, Tlp.GREEN})
    level: PrivacyLevel = PrivacyLevel.MODERATE

    def wants(self, indicator: Indicator) -> bool:
        """Whether the indicator passes this target's confidence and type filters."""
        return indicator.confidence >= self.min_confidence and (
            not self.types or indicator.type in self.types
        )


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """Receiver side: constant-time check of a signature header."""
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class WebhookDispatcher:
    """Queues and delivers webhook calls; start with :meth:`run`, feed with :meth:`offer`."""

    def __init__(
        self,
        targets: Sequence[WebhookTarget],
        privacy: PrivacyFilter,
        client: httpx.AsyncClient,
        *,
        queue_size: int = 1000,
        max_attempts: int = 5,
        base_delay: float = 1.0,
        timeout: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics = METRICS,
    ) -> None:
        self._targets = list(targets)
        self._privacy = privacy
        self._client = client
        self._queues: dict[str, asyncio.Queue[bytes]] = {
            t.name: asyncio.Queue(queue_size) for t in targets
        }
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._timeout = timeout
        self._sleep = sleep
        self._metrics = metrics
        metrics.declare(
            "dtim_webhook_deliveries_total", "counter", "Webhook calls by target and outcome."
        )

    def offer(
        self, indicator: Indicator, *, fresh: Callable[[str, str, bytes], bool] | None = None
    ) -> int:
        """Queue the indicator for every target that wants it and may see it; never blocks.

        Args:
            fresh: called with (target name, indicator id, body); a False answer skips
                that target (the body is the one it was sent last time).

        Returns:
            How many targets it was queued for.
        """
        queued = 0
        for target in self._targets:
            if not target.wants(indicator):
                continue
            shared = self._privacy.share(
                indicator, Destination.consumer(target.name, tlps=target.tlps, level=target.level)
            )
            if shared is None:
                continue
            body = orjson.dumps({"event": "indicator", "indicator": shared.to_json()})
            if fresh is not None and not fresh(target.name, indicator.id, body):
                continue
            try:
                self._queues[target.name].put_nowait(body)
                queued += 1
            except asyncio.QueueFull:
                self._metrics.inc(
                    "dtim_webhook_deliveries_total",
                    target=target.name,
                    outcome="dropped_queue_full",
                )
        return queued

    async def run(self) -> None:
        """Deliver until cancelled: one worker per target."""
        async with asyncio.TaskGroup() as group:
            for target in self._targets:
                group.create_task(self._work(target), name=f"webhook:{target.name}")

    async def _work(self, target: WebhookTarget) -> None:
        queue = self._queues[target.name]
        while True:
            body = await queue.get()
            try:
                await self._deliver(target, body)
            finally:
                queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued call was delivered or given up."""
        for queue in self._queues.values():
            await queue.join()

    async def _deliver(self, target: WebhookTarget, body: bytes) -> None:
        for attempt in range(self._max_attempts):
            timestamp = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(target.secret, timestamp, body),
            }
            try:
                response = await self._client.post(
                    target.url, content=body, headers=headers, timeout=self._timeout
                )
            except httpx.HTTPError:
                outcome = "error"
            else:
                if response.is_success:
                    self._metrics.inc(
                        "dtim_webhook_deliveries_total", target=target.name, outcome="delivered"
                    )
                    return
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    self._metrics.inc(
                        "dtim_webhook_deliveries_total", target=target.name, outcome="refused"
                    )
                    return
                outcome = f"http_{response.status_code}"
            self._metrics.inc(
                "dtim_webhook_deliveries_total", target=target.name, outcome=f"retry_{outcome}"
            )
            if attempt + 1 < self._max_attempts:
                await self._sleep(self._base_delay * 2**attempt)
        self._metrics.inc("dtim_webhook_deliveries_total", target=target.name, outcome="gave_up")
