"""Persistence for remote sensors: their tokens (hashed) and the batches already committed.

* ``sensor_tokens``: one row per sensor, named by the admin; only the SHA-256
  of the token's secret is kept, and a revoked token stays listed (revoked_at).
* ``sensor_batches``: the (sensor, batch id) pairs committed. A batch is
  inserted here in the same transaction as its sightings, so a batch a sensor
  sends again (it never heard the answer) is recognised and not counted twice.
  The ids are kept for :data:`BATCH_MEMORY`; the node refuses a batch the
  sensor buffered more than :data:`BATCH_MAX_AGE` ago, so a batch it may have
  forgotten is never counted a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Float, Index, Integer, String, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from dtim.errors import StoreError, ValidationError
from dtim.model import Sighting
from dtim.store.queries import Store
from dtim.store.rows import from_epoch
from dtim.store.tables import metadata

sensor_tokens = Table(
    "sensor_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("last_used", Float, nullable=True),
)

sensor_batches = Table(
    "sensor_batches",
    metadata,
    Column("sensor_id", String(32), primary_key=True),
    Column("batch_id", String(64), primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("sightings", Integer, nullable=False),
    Index("ix_sensor_batches_received_at", "received_at"),  # added by migration 0006
)

BATCH_MEMORY = timedelta(days=30)
"""How long the node remembers the id of a batch it committed."""
BATCH_MAX_AGE = BATCH_MEMORY - timedelta(days=1)
"""The oldest a batch (since the sensor buffered it) the node still takes: an older one it
may have forgotten. The day between the two covers a sensor clock behind the node's."""


@dataclass(frozen=True, slots=True)
class SensorToken:
    """A sensor as the node knows it (never the token itself)."""

    id: str
    name: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None
    last_used: datetime | None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class SensorBatch:
    """One batch a sensor sent: its id, the sightings, their sealed evidence (same order)."""

    batch_id: str
    sightings: Sequence[Sighting]
    sealed: Sequence[bytes | None]


def _token(row: RowMapping) -> SensorToken:
    return SensorToken(
        id=row["id"],
        name=row["name"],
        secret_hash=row["secret_hash"],
        created_at=from_epoch(row["created_at"]),
        revoked_at=None if row["revoked_at"] is None else from_epoch(row["revoked_at"]),
        last_used=None if row["last_used"] is None else from_epoch(row["last_used"]),
    )


class SensorStore:
    """Sensor tokens and batches over a connected :class:`~dtim.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add_token(self, token_id: str, name: str, secret_hash: str, now: datetime) -> None:
        """Keep a new sensor's hashed token.

        Raises:
            ValidationError: a sensor with that name exists already.
        """

        def work() -> None:
            with self.store._write() as conn:
                known = conn.execute(select(sensor_tokens.c.id).where(sensor_tokens.c.name == name))
                if known.first() is not None:
                    raise ValidationError("name", f"a sensor named {name!r} exists already")
                conn.execute(
                    sensor_tokens.insert(),
                    [
                        {
                            "id": token_id,
                            "name": name,
                            "secret_hash": secret_hash,
                            "created_at": now.timestamp(),
                        }
                    ],
                )

        try:
            await self.store._run(work)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # two processes adding it at once
                raise ValidationError("name", f"a sensor named {name!r} exists already") from exc
            raise

    async def tokens(self) -> list[SensorToken]:
        """Every sensor, oldest first (revoked ones included)."""
        stmt = select(sensor_tokens).order_by(sensor_tokens.c.created_at, sensor_tokens.c.name)

        def work() -> list[SensorToken]:
            with self.store._read() as conn:
                return [_token(row) for row in conn.execute(stmt).mappings()]

        return await self.store._run(work)

    async def token(self, token_id: str) -> SensorToken | None:
        """One sensor by token id."""
        stmt = select(sensor_tokens).where(sensor_tokens.c.id == token_id)

        def work() -> SensorToken | None:
            with self.store._read() as conn:
                row = conn.execute(stmt).mappings().first()
            return None if row is None else _token(row)

        return await self.store._run(work)

    async def revoke(self, name_or_id: str, now: datetime) -> SensorToken:
        """Revoke a sensor's token (its next request is refused).

        Raises:
            ValidationError: no sensor with that name or id.
        """
        match = (sensor_tokens.c.name == name_or_id) | (sensor_tokens.c.id == name_or_id)

        def work() -> SensorToken:
            with self.store._write() as conn:
                row = conn.execute(select(sensor_tokens).where(match)).mappings().first()
                if row is None:
                    raise ValidationError("sensor", f"no sensor named {name_or_id!r}")
                if row["revoked_at"] is None:
                    conn.execute(
                        update(sensor_tokens)
                        .where(sensor_tokens.c.id == row["id"])
                        .values(revoked_at=now.timestamp())
                    )
                row = conn.execute(select(sensor_tokens).where(match)).mappings().one()
            return _token(row)

        return await self.store._run(work)

    async def record_batches(
        self, sensor_id: str, batches: Sequence[SensorBatch], now: datetime
    ) -> list[bool]:
        """Commit every batch not committed before, in one transaction.

        Returns:
            Per batch, True when it was new (committed now), False when it was a repeat.
        """
        dialect_insert = postgresql.insert if self.store.dialect == "postgresql" else sqlite.insert
        claim = (
            dialect_insert(sensor_batches)
            .on_conflict_do_nothing(index_elements=["sensor_id", "batch_id"])
            .returning(sensor_batches.c.batch_id)
        )
        stamp = now.timestamp()

        def work() -> list[bool]:
            fresh: list[bool] = []
            with self.store._write() as conn:
                for batch in batches:
                    # RETURNING yields the row only when it was inserted (rowcount is not
                    # reliable across drivers for ON CONFLICT DO NOTHING).
                    inserted = conn.execute(
                        claim,
                        {
                            "sensor_id": sensor_id,
                            "batch_id": batch.batch_id,
                            "received_at": stamp,
                            "sightings": len(batch.sightings),
                        },
                    ).first()
                    fresh.append(inserted is not None)
                    if inserted is not None:
                        self.store.record_into(conn, batch.sightings, batch.sealed)
                conn.execute(
                    update(sensor_tokens)
                    .where(sensor_tokens.c.id == sensor_id)
                    .values(last_used=stamp)
                )
            return fresh

        return await self.store._run(work)

    async def forget_batches(self, before: datetime) -> int:
        """Forget the ids of batches committed before ``before``; returns how many."""
        stamp = before.timestamp()

        def work() -> int:
            with self.store._write() as conn:
                return int(
                    conn.execute(
                        delete(sensor_batches).where(sensor_batches.c.received_at < stamp)
                    ).rowcount
                )

        return await self.store._run(work)
