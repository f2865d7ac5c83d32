from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from dtim.errors import ValidationError
from dtim.model import Sighting, make_indicator
from dtim.store import Store
from dtim.store.sensors import SensorBatch, SensorStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _batch(batch_id: str, *values: str) -> SensorBatch:
    sightings = [
        Sighting(make_indicator(v, now=NOW, sources=["ufw"]), "ufw", "ufw-port-scan", NOW)
        for v in values
    ]
    return SensorBatch(batch_id, sightings, [b"sealed"] * len(sightings))


async def test_a_batch_is_committed_once_even_when_sent_concurrently(store: Store) -> None:
    sensors = SensorStore(store)
    await sensors.add_token("0123456789abcdef", "dmz-1", "ab" * 32, NOW)
    first = _batch("a" * 32, "45.13.7.1", "45.13.7.2")
    results = await asyncio.gather(
        *(sensors.record_batches("0123456789abcdef", [first], NOW) for _ in range(4))
    )
    assert sorted(r[0] for r in results) == [False, False, False, True]
    again = await sensors.record_batches(
        "0123456789abcdef", [first, _batch("b" * 32, "45.13.7.3")], NOW
    )
    assert again == [False, True]
    stored = await store.find_indicator("ipv4", "45.13.7.1")
    assert stored is not None
    assert stored.sightings == 1
    assert len(await store.sightings_for(stored.id)) == 1
    token = await sensors.token("0123456789abcdef")
    assert token is not None
    assert token.last_used == NOW


async def test_tokens_are_named_once_and_revoked_by_name_or_id(store: Store) -> None:
    sensors = SensorStore(store)
    await sensors.add_token("0123456789abcdef", "dmz-1", "ab" * 32, NOW)
    with pytest.raises(ValidationError, match="exists already"):
        await sensors.add_token("fedcba9876543210", "dmz-1", "cd" * 32, NOW)
    revoked = await sensors.revoke("dmz-1", NOW)
    assert not revoked.active
    assert (await sensors.revoke("0123456789abcdef", NOW)).revoked_at == NOW
    with pytest.raises(ValidationError, match="no sensor"):
        await sensors.revoke("nope", NOW)
    assert [t.name for t in await sensors.tokens()] == ["dmz-1"]


async def test_batch_ids_are_forgotten_after_their_memory_only(store: Store) -> None:
    sensors = SensorStore(store)
    await sensors.add_token("0123456789abcdef", "dmz-1", "ab" * 32, NOW)
    early, late = _batch("c" * 32, "45.13.7.4"), _batch("d" * 32, "45.13.7.5")
    await sensors.record_batches("0123456789abcdef", [early], NOW)
    await sensors.record_batches("0123456789abcdef", [late], NOW + timedelta(days=2))
    assert await sensors.forget_batches(NOW + timedelta(days=1)) == 1
    # The late batch is still recognised; the forgotten one would count again, which is
    # why the node refuses batches buffered longer than it remembers.
    assert await sensors.record_batches(
        "0123456789abcdef", [late, early], NOW + timedelta(days=3)
    ) == [False, True]
    assert await sensors.forget_batches(NOW) == 0
