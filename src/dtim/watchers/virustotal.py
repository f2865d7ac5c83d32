"""VirusTotal API v3 enrichment of new hash, domain and IP indicators.

The enricher is off without an API key (said once at start). Requests go
through a token bucket (4 per minute by default, the public API's limit),
back off exponentially on 429 and 5xx (honouring ``Retry-After``), and every
answer, "not found" included, is cached through :class:`VtCache`, which the
store implements; :class:`MemoryVtCache` serves tests and ``dtim ingest``.
The HTTP client is injected (an ``httpx.AsyncClient``) and the base URL is
configurable, so tests run against a local fake server.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import httpx

from dtim.errors import WatcherError
from dtim.model import Indicator, JsonValue
from dtim.watchers.hookspecs import hookimpl

log = logging.getLogger("dtim.watchers.virustotal")
DEFAULT_BASE_URL = "https://www.virustotal.com/api/v3"
ENRICHED_TYPES = frozenset({"ipv4", "ipv6", "domain", "md5", "sha1", "sha256", "url"})
_PATHS = {
    "ipv4": "ip_addresses",
    "ipv6": "ip_addresses",
    "domain": "domains",
    "md5": "files",
    "sha1": "files",
    "sha256": "files",
    "url": "urls",
}
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class VtAnswer:
    """What VirusTotal said about one value (``found`` False for 404)."""

    found: bool
    malicious: int = 0
    suspicious: int = 0
    harmless: int = 0
    undetected: int = 0

    @property
    def total(self) -> int:
        """Engines that gave a verdict."""
        return self.malicious + self.suspicious + self.harmless + self.undetected


class VtCache(Protocol):
    """Where answers are kept between runs; the store implements it."""

    async def get(self, key: str) -> VtAnswer | None:
        """The cached answer for ``type:value``, or None."""
        ...

    async def put(self, key: str, answer: VtAnswer) -> None:
        """Remember an answer."""
        ...


class MemoryVtCache:
    """An in-memory cache, for tests and one-shot runs."""

    def __init__(self) -> None:
        self.answers: dict[str, VtAnswer] = {}

    async def get(self, key: str) -> VtAnswer | None:
        """The cached answer, or None."""
        return self.answers.get(key)

    async def put(self, key: str, answer: VtAnswer) -> None:
        """Remember an answer."""
        self.answers[key] = answer


class TokenBucket:
    """``rate`` requests per minute with bursts of ``burst``; ``acquire`` waits for a token."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be above 0")
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Take one token, waiting as long as needed."""
        async with self._lock:
            while True:
                now = self.clock()
                self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                await self.sleep((1.0 - self.tokens) / self.rate)


def adjust(indicator: Indicator, answer: VtAnswer) -> Indicator:
    """Confidence from the detection ratio.

    Raised with detections; lowered when many engines call the value clean.
    """
    if not answer.found or answer.total == 0:
        return indicator
    ratio = (answer.malicious + 0.5 * answer.suspicious) / answer.total
    summary: dict[str, JsonValue] = {
        "malicious": answer.malicious,
        "suspicious": answer.suspicious,
        "total": answer.total,
    }
    fields: dict[str, JsonValue] = {**indicator.custom_fields, "virustotal": summary}
    if answer.malicious + answer.suspicious == 0:
        confidence = (
            max(10, indicator.confidence - 20) if answer.total >= 10 else indicator.confidence
        )
        tags = tuple(sorted({*indicator.tags, "vt-clean"}))
    else:
        confidence = max(indicator.confidence, min(100, 40 + round(60 * min(1.0, ratio * 3))))
        tags = tuple(sorted({*indicator.tags, "vt-malicious"}))
    return replace(indicator, confidence=confidence, tags=tags, custom_fields=fields)


class VirusTotalEnricher:
    """Looks indicators up on VirusTotal and adjusts their confidence.

    Args:
        client: an ``httpx.AsyncClient`` (its timeout applies to every call).
        api_key: the ``x-apikey``.
        base_url: API root, ``https://www.virustotal.com/api/v3`` by default.
        rate_per_minute: request budget (public API: 4).
        cache: where answers are kept.
        max_retries: retries on 429/5xx/network errors before giving up.
        backoff: first back-off in seconds, doubled on every retry.
        sleep: how to wait (injectable for tests).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        rate_per_minute: float = 4,
        cache: VtCache | None = None,
        max_retries: int = 4,
        backoff: float = 15.0,
        sleep: Sleep = asyncio.sleep,
        bucket: TokenBucket | None = None,
    ) -> None:
        if not api_key:
            raise WatcherError(
                "VirusTotal enrichment needs an API key (watchers.virustotal_api_key)"
            )
        self.client = client
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.cache = cache if cache is not None else MemoryVtCache()
        self.max_retries = max_retries
        self.backoff = backoff
        self.sleep = sleep
        self.bucket = bucket or TokenBucket(rate_per_minute, sleep=sleep)
        self.requests = 0

    def __repr__(self) -> str:
        return f"VirusTotalEnricher(base_url={self.base_url!r}, api_key=***)"

    def _url(self, type_: str, value: str) -> str:
        if type_ == "url":
            value = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
        return f"{self.base_url}/{_PATHS[type_]}/{value}"

    async def lookup(self, type_: str, value: str) -> VtAnswer | None:
        """VirusTotal's answer (cached), or None for types it does not know.

        Raises:
            WatcherError: the key is refused, or the API keeps failing after the retries.
        """
        if type_ not in ENRICHED_TYPES:
            return None
        key = f"{type_}:{value}"
        cached = await self.cache.get(key)
        if cached is not None:
            return cached
        answer = await self._fetch(self._url(type_, value))
        await self.cache.put(key, answer)
        return answer

    async def _fetch(self, url: str) -> VtAnswer:
        delay = self.backoff
        for attempt in range(self.max_retries + 1):
            await self.bucket.acquire()
            self.requests += 1
            try:
                response = await self.client.get(
                    url, headers={"x-apikey": self._key, "accept": "application/json"}
                )
            except httpx.HTTPError as exc:
                if attempt == self.max_retries:
                    raise WatcherError(f"VirusTotal unreachable: {exc}") from exc
                await self.sleep(delay)
                delay *= 2
                continue
            if response.status_code == 404:
                return VtAnswer(found=False)
            if response.status_code in (401, 403):
                raise WatcherError(f"VirusTotal refused the API key (HTTP {response.status_code})")
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self.max_retries:
                    raise WatcherError(
                        f"VirusTotal keeps failing (HTTP {response.status_code}) "
                        f"after {attempt + 1} tries"
                    )
                await self.sleep(_retry_after(response, delay))
                delay *= 2
                continue
            if response.status_code != 200:
                raise WatcherError(f"VirusTotal answered HTTP {response.status_code}")
            return _answer(response)
        raise WatcherError("VirusTotal: no answer")  # unreachable: the loop returns or raises

    async def enrich(self, indicator: Indicator) -> Indicator:
        """The indicator with confidence adjusted from VirusTotal's detection ratio.

        Raises:
            WatcherError: as :meth:`lookup`.
        """
        answer = await self.lookup(indicator.type, indicator.value)
        return indicator if answer is None else adjust(indicator, answer)


def _retry_after(response: httpx.Response, default: float) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, min(float(raw), 3600.0))
    except ValueError:
        return default


def _answer(response: httpx.Response) -> VtAnswer:
    try:
        stats = response.json()["data"]["attributes"]["last_analysis_stats"]
        counts = [
            int(stats.get(name, 0))
            for name in ("malicious", "suspicious", "harmless", "undetected")
        ]
        if min(counts) < 0:
            raise ValueError(f"negative engine count in {counts}")
        return VtAnswer(True, *counts)
    # RecursionError: absurdly nested JSON; OverflowError: a count of 1e400 (infinity).
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
        raise WatcherError(f"VirusTotal sent an unexpected document: {exc}") from exc


def make_enricher(
    client: httpx.AsyncClient, api_key: str, **options: float | str | VtCache
) -> VirusTotalEnricher | None:
    """The enricher, or None (logged once) when no API key is configured."""
    if not api_key:
        log.info("VirusTotal enrichment is off: no watchers.virustotal_api_key")
        return None
    return VirusTotalEnricher(client, api_key, **options)  # type: ignore[arg-type]  # keyword options of VirusTotalEnricher


@hookimpl
def dtim_register_enrichers() -> Sequence[str]:
    """Register the VirusTotal enricher."""
    return ("virustotal",)
