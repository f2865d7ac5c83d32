"""VirusTotal enrichment against a fake VirusTotal API v3 served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dtim.errors import WatcherError
from dtim.model import make_indicator
from dtim.watchers.virustotal import MemoryVtCache, TokenBucket, VirusTotalEnricher, make_enricher
from tests.servers import RunningServer, running_server

KEY = "test-key"


class FakeVirusTotal:
    """Answers like VT v3: stats for known values, 404 otherwise, 429/503 when told to."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.fail_next: list[int] = []

    async def lookup(self, request: Request) -> JSONResponse:
        self.hits.append(request.url.path)
        if request.headers.get("x-apikey") != KEY:
            return JSONResponse({"error": {"code": "WrongCredentialsError"}}, status_code=401)
        if self.fail_next:
            return JSONResponse(
                {"error": {"code": "QuotaExceededError"}},
                status_code=self.fail_next.pop(0),
                headers={"retry-after": "1"},
            )
        value = request.path_params["value"]
        if value.startswith("0000") or value == "unknown.example.net":
            return JSONResponse({"error": {"code": "NotFoundError"}}, status_code=404)
        malicious = 30 if value.startswith("44d8") or value == "45.9.20.11" else 0
        stats = {
            "malicious": malicious,
            "suspicious": 0,
            "harmless": 70 - malicious,
            "undetected": 0,
        }
        return JSONResponse({"data": {"id": value, "attributes": {"last_analysis_stats": stats}}})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/v3/{kind}/{value}", self.lookup)])


@pytest.fixture
def fake_vt() -> Iterator[tuple[FakeVirusTotal, RunningServer]]:
    fake = FakeVirusTotal()
    with running_server(fake.app()) as server:
        yield fake, server


class FakeTime:
    """A monotonic clock and a sleep that only moves it (rate limiting without waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def indicator(value: str, type_: str, confidence: int = 50):  # type: ignore[no-untyped-def]  # test factory
    return make_indicator(
        value, type_, now=datetime(2026, 11, 28, tzinfo=UTC), confidence=confidence
    )


async def test_confidence_follows_the_detection_ratio_and_answers_are_cached(
    fake_vt: tuple[FakeVirusTotal, RunningServer],
) -> None:
    fake, server = fake_vt
    time = FakeTime()
    async with httpx.AsyncClient(timeout=5) as client:
        vt = VirusTotalEnricher(
            client,
            KEY,
            base_url=server.url("/api/v3"),
            sleep=time.sleep,
            bucket=TokenBucket(4, clock=time.clock, sleep=time.sleep),
            cache=MemoryVtCache(),
        )
        bad = await vt.enrich(indicator("44d88612fea8a8f36de82e1278abb02f", "md5"))
        clean = await vt.enrich(indicator("example.org", "domain", confidence=60))
        unknown = await vt.enrich(indicator("0000000000000000000000000000000000000000", "sha1"))
        again = await vt.enrich(indicator("44d88612fea8a8f36de82e1278abb02f", "md5"))
    assert bad.confidence == 100
    assert "vt-malicious" in bad.tags
    assert clean.confidence == 40
    assert "vt-clean" in clean.tags
    assert unknown.confidence == 50
    assert again == bad
    assert len(fake.hits) == 3
    assert fake.hits[0] == "/api/v3/files/44d88612fea8a8f36de82e1278abb02f"
    assert sum(time.slept) == pytest.approx(30, abs=0.01)  # 3 requests at 4/min: two waits of 15 s


async def test_backs_off_on_429_and_5xx_then_gives_up(
    fake_vt: tuple[FakeVirusTotal, RunningServer],
) -> None:
    fake, server = fake_vt
    time = FakeTime()
    async with httpx.AsyncClient(timeout=5) as client:
        vt = VirusTotalEnricher(
            client,
            KEY,
            base_url=server.url("/api/v3"),
            sleep=time.sleep,
            max_retries=2,
            bucket=TokenBucket(600, clock=time.clock, sleep=time.sleep),
        )
        fake.fail_next = [429, 503]
        answer = await vt.lookup("ipv4", "45.9.20.11")
        assert answer is not None
        assert answer.malicious == 30
        assert 1.0 in time.slept  # Retry-After honoured
        fake.fail_next = [503, 503, 503]
        with pytest.raises(WatcherError, match="keeps failing"):
            await vt.lookup("ipv4", "45.9.20.12")


async def test_bad_key_and_no_key(
    fake_vt: tuple[FakeVirusTotal, RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    _, server = fake_vt
    async with httpx.AsyncClient(timeout=5) as client:
        vt = VirusTotalEnricher(client, "wrong", base_url=server.url("/api/v3"))
        with pytest.raises(WatcherError, match="refused the API key"):
            await vt.lookup("domain", "example.org")
        assert "wrong" not in repr(vt)
        with caplog.at_level(logging.INFO, logger="dtim.watchers.virustotal"):
            assert make_enricher(client, "") is None
    assert "VirusTotal enrichment is off" in caplog.text
