"""The evidence learner opens only what another process committed: what this process's sink
taught the privacy filter before its commit is passed over, and nothing is missed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from dtim.crypto.evidence import seal_evidence
from dtim.crypto.keyring import Keyring
from dtim.errors import StoreError
from dtim.model import Evidence, FakeClock, Sighting, make_indicator
from dtim.privacy import PrivacyFilter, PrivacyPolicy
from dtim.sensor.wire import WireBatch
from dtim.service import EvidenceLearner, StoreSink
from dtim.store import Store


def sighting(value: str, host: str, now: datetime) -> Sighting:
    return Sighting(
        indicator=make_indicator(value, "ipv4", now=now, sources=["ufw"]),
        source="ufw",
        rule="ufw-port-scan",
        observed_at=now,
        count=1,
        evidence=Evidence(lines=(f"scan from {value}",), hosts=(host,)),
    )


@dataclass
class Process:
    """One node process's store, filter, learner and sink, and another process's sink."""

    store: Store
    privacy: PrivacyFilter
    learner: EvidenceLearner
    here: StoreSink
    elsewhere: StoreSink


@asynccontextmanager
async def node_process(tmp_path: Path, now: datetime) -> AsyncIterator[Process]:
    keyring = Keyring.load_or_create(tmp_path / "keys", now=now)
    async with Store(f"sqlite:///{tmp_path / 'dtim.db'}") as store:
        privacy = PrivacyFilter(PrivacyPolicy())
        learner = EvidenceLearner(store, keyring, privacy)
        yield Process(
            store,
            privacy,
            learner,
            StoreSink(store, keyring, privacy, learner),
            StoreSink(store, keyring),  # another process of the same node
        )


async def test_the_learner_opens_only_other_processes_evidence(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    async with node_process(tmp_path, now) as process:
        store, privacy, learner = process.store, process.privacy, process.learner
        here, elsewhere = process.here, process.elsewhere
        assert privacy.tag_verdict("db01.acme.net") is None  # no rule knows the name itself
        assert privacy.tag_verdict("web07.acme.net") is None
        await here.commit([sighting("45.33.32.1", "db01.acme.net", now)], [])
        await elsewhere.commit([sighting("45.33.32.2", "web07.acme.net", now)], [])
        assert await learner.catch_up() == 1  # the other process's sighting only
        assert privacy.tag_verdict("db01.acme.net") is not None  # taught by the sink
        assert privacy.tag_verdict("web07.acme.net") is not None  # opened by the learner

        # A commit that fails is not passed over later: the same evidence, committed by
        # another process once the store takes writes again, is opened and learned.
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TRIGGER dtim_test_full BEFORE INSERT ON sightings "
                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                )
            )
        with pytest.raises(StoreError):
            await here.commit([sighting("45.33.32.3", "mail02.acme.net", now)], [])
        assert learner.waiting == 0
        with store.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER dtim_test_full"))
        await here.commit([sighting("45.33.32.4", "vpn01.acme.net", now)], [])
        await elsewhere.commit([sighting("45.33.32.5", "build03.acme.net", now)], [])
        assert learner.waiting == 1
        assert await learner.catch_up() == 1
        assert learner.waiting == 0
        assert privacy.tag_verdict("build03.acme.net") is not None


async def test_a_repeated_sensor_batch_leaves_nothing_waiting(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    async with node_process(tmp_path, now) as process:
        sink, learner = process.here, process.learner
        batch = WireBatch("b-1", (sighting("45.33.32.9", "cam04.acme.net", now),))
        assert await sink.commit_batches("sensor-a", [batch], now) == [True]
        # The sensor did not hear the answer and sends the batch again: it is not stored
        # twice, and its fresh seal (a new nonce) is not left waiting forever.
        assert await sink.commit_batches("sensor-a", [batch], now) == [False]
        assert learner.waiting == 1
        assert await learner.catch_up() == 0
        assert learner.waiting == 0


# Another process's sighting of an indicator already stored, with its own evidence.
LATE_SIGHTING = (
    "INSERT INTO sightings (indicator_id, source, rule, observed_at, count, evidence) "
    "SELECT indicator_id, source, rule, observed_at, count, :evidence "
    "FROM sightings WHERE id = :id"
)


async def test_a_sighting_committed_after_a_higher_one_is_learned(
    postgres_schema_url: str, tmp_path: Path
) -> None:
    # On PostgreSQL a sighting's id is taken at its insert: a transaction still open while
    # a later one commits leaves a lower id for the learner to meet after its cursor passed.
    now = datetime.now(UTC)
    keyring = Keyring.load_or_create(tmp_path / "keys", now=now)
    async with Store(postgres_schema_url) as store:
        privacy = PrivacyFilter(PrivacyPolicy())
        learner = EvidenceLearner(store, keyring, privacy)
        other_process = StoreSink(store, keyring)
        await other_process.commit([sighting("45.33.32.1", "db01.acme.net", now)], [])
        first = (await store.sightings_after(0))[0]
        late = seal_evidence(
            keyring,
            Evidence(lines=("scan",), hosts=("late01.acme.net",)),
            context=first.indicator_id,
        )
        with store.engine.connect() as slow:
            transaction = slow.begin()
            slow.execute(text(LATE_SIGHTING), {"evidence": late, "id": first.id})
            await other_process.commit([sighting("45.33.32.2", "web07.acme.net", now)], [])
            assert await learner.catch_up() == 2
            assert privacy.tag_verdict("late01.acme.net") is None
            assert learner.missing == 1
            transaction.commit()
        assert await learner.catch_up() == 1
        assert privacy.tag_verdict("late01.acme.net") is not None
        assert learner.missing == 0


async def test_ids_that_never_come_are_given_up(tmp_path: Path, clock: FakeClock) -> None:
    now = datetime.now(UTC)
    keyring = Keyring.load_or_create(tmp_path / "keys", now=now)
    async with Store(f"sqlite:///{tmp_path / 'dtim.db'}") as store:
        privacy = PrivacyFilter(PrivacyPolicy())
        learner = EvidenceLearner(
            store, keyring, privacy, monotonic=lambda: clock.now().timestamp(), batch=2
        )
        other_process = StoreSink(store, keyring)
        for k, host in enumerate(("a01.acme.net", "b01.acme.net", "c01.acme.net", "d01.acme.net")):
            await other_process.commit([sighting(f"45.33.32.{k + 1}", host, now)], [])
        rows = await store.sightings_after(0)
        # The second row is gone by the time the learner reads (rolled back, or taken by
        # a transaction still open): the ids on both sides are read, across batches.
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM sightings WHERE id = :id"), {"id": rows[1].id})
        assert await learner.catch_up() == 3
        assert learner.missing == 1
        assert privacy.tag_verdict("b01.acme.net") is None
        clock.advance(30)
        # It comes within the minute (the same id, as a late commit gives it): learned.
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sightings (id, indicator_id, source, rule, observed_at, count, "
                    "evidence) VALUES (:id, :indicator, 'ufw', 'ufw-port-scan', 0, 1, :evidence)"
                ),
                {
                    "id": rows[1].id,
                    "indicator": rows[1].indicator_id,
                    "evidence": rows[1].sealed_evidence,
                },
            )
        assert await learner.catch_up() == 1
        assert privacy.tag_verdict("b01.acme.net") is not None
        assert learner.missing == 0

        # A deleted sighting's id is asked for again only for a minute.
        await other_process.commit([sighting("45.33.32.8", "e01.acme.net", now)], [])
        await other_process.commit([sighting("45.33.32.9", "f01.acme.net", now)], [])
        deleted = (await store.sightings_after(rows[-1].id))[0]
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM sightings WHERE id = :id"), {"id": deleted.id})
        assert await learner.catch_up() == 1
        assert learner.missing == 1
        clock.advance(65)
        assert await learner.catch_up() == 0
        assert learner.missing == 0


async def test_a_purged_history_is_not_asked_for_again(tmp_path: Path) -> None:
    # A node restarted after months of purges: its oldest sighting has a high id, and the
    # ids below it (deleted long ago) are not taken for commits still under way.
    now = datetime.now(UTC)
    keyring = Keyring.load_or_create(tmp_path / "keys", now=now)
    async with Store(f"sqlite:///{tmp_path / 'dtim.db'}") as store:
        other_process = StoreSink(store, keyring)
        await other_process.commit([sighting("45.33.32.1", "a01.acme.net", now)], [])
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE sightings SET id = 100000"))
        await other_process.commit([sighting("45.33.32.2", "b01.acme.net", now)], [])
        privacy = PrivacyFilter(PrivacyPolicy())
        learner = EvidenceLearner(store, keyring, privacy)
        assert await learner.catch_up() == 2
        assert privacy.tag_verdict("a01.acme.net") is not None
        assert learner.missing < 1000  # not the 50,000 ids a full gap would be
