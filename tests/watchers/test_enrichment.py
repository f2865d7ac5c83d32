"""Watchers' VirusTotal enrichment on a real store: queued lookups adjust the stored indicator,
the answer is cached in the store, and the next sighting is adjusted without a request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from dtim.crypto.keyring import Keyring
from dtim.model import Sighting, make_indicator
from dtim.service import StoreSink
from dtim.store import Store
from dtim.watchers.enrichment import EnrichingSink, StateVtCache
from dtim.watchers.virustotal import VirusTotalEnricher
from tests.servers import RunningServer, running_server
from tests.watchers.test_virustotal import KEY, FakeVirusTotal

EICAR_SHA256 = "44d88612fea8a8f36de82e1278abb02f" + "0" * 32


@pytest.fixture
def fake_vt() -> Iterator[tuple[FakeVirusTotal, RunningServer]]:
    fake = FakeVirusTotal()
    with running_server(fake.app()) as server:
        yield fake, server


def sighting(type_: str, value: str) -> Sighting:
    now = datetime.now(UTC)
    return Sighting(
        indicator=make_indicator(value, type_, confidence=50, now=now, sources=("clamav",)),
        source="clamav",
        rule="clamav-infected",
        observed_at=now,
    )


async def test_lookups_run_behind_the_watchers_and_are_cached_in_the_store(
    store: Store, tmp_path: Path, fake_vt: tuple[FakeVirusTotal, RunningServer]
) -> None:
    fake, server = fake_vt
    keyring = Keyring.load_or_create(tmp_path / "keys", now=datetime.now(UTC))
    async with httpx.AsyncClient(timeout=5) as client:
        enricher = VirusTotalEnricher(
            client,
            KEY,
            base_url=server.url("/api/v3"),
            rate_per_minute=6000,
            cache=StateVtCache(store),
        )
        sink = EnrichingSink(StoreSink(store, keyring), enricher, store)
        await sink.commit([sighting("sha256", EICAR_SHA256), sighting("ipv4", "62.40.50.60")], [])
        assert fake.hits == []  # the watcher did not wait for VirusTotal
        stored = await store.find_indicator("sha256", EICAR_SHA256)
        assert stored is not None
        assert stored.confidence == 50

        stop = asyncio.Event()
        worker = asyncio.ensure_future(sink.run(stop))
        deadline = asyncio.get_running_loop().time() + 10
        while sink.enriched + sink.failures < 1 or not sink.queue.empty():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(worker, 5)
        assert fake.hits[0].startswith("/api/v3/files/")  # hashes are looked up first
        enriched = await store.find_indicator("sha256", EICAR_SHA256)
        assert enriched is not None
        assert enriched.confidence > 50
        assert "vt-malicious" in enriched.tags

        # A restarted node reads the answer from the store: no request, adjusted at once.
        requests = len(fake.hits)
        again = EnrichingSink(
            StoreSink(store, keyring),
            VirusTotalEnricher(
                client, KEY, base_url=server.url("/api/v3"), cache=StateVtCache(store)
            ),
            store,
        )
        await again.commit([sighting("sha256", EICAR_SHA256)], [])
        assert len(fake.hits) == requests
        assert again.queue.empty()
        assert "vt-malicious" in (await store.find_indicator("sha256", EICAR_SHA256)).tags  # type: ignore[union-attr]
