"""Database engines for SQLite (default) and PostgreSQL, and schema migration on start."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from dtim.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_FLAG = "dtim_write"
_BUSY_TIMEOUT_MS = 30_000
_SQLITE_CACHE_KIB = 64 * 1024
"""Page cache per SQLite connection: SQLite's 2 MiB default makes every index insert into a
million-row table read pages back from the OS; pages are only allocated as they are used."""
_SQLITE_WAL_CHECKPOINT_PAGES = 16_384
"""Checkpoint the WAL every 64 MiB (4 KiB pages) instead of SQLite's 4 MiB: a bulk write
dirties thousands of random index pages, and checkpointing every few commits copies the
same pages into the database over and over. ``journal_size_limit`` truncates the file back
to that size after a checkpoint."""
POOL_SIZE = 8


def driver_url(url: str) -> str:
    """Map a user-facing URL to the driver SQLAlchemy should use (pysqlite or psycopg 3).

    Raises:
        StoreError: the scheme is neither SQLite nor PostgreSQL.
    """
    if url.startswith(("sqlite:///", "sqlite+pysqlite:///")) or url == "sqlite://":
        return url
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise StoreError(
        f"unsupported database URL scheme in {redact_url(url)!r} (use sqlite:/// or postgresql://)"
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def describe(exc: SQLAlchemyError) -> str:
    """The database's own one-line message for ``exc``, for operators.

    SQLAlchemy's text adds the SQL statement and its parameters, which may
    hold indicator values and sealed evidence: they belong neither in logs nor
    in a CLI error.
    """
    reason = str(getattr(exc, "orig", None) or exc).strip().split("\n", 1)[0]
    return reason or exc.__class__.__name__


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout and write transactions that lock early.

    The store runs its operations in worker threads with this synchronous
    engine: one thread hop per operation instead of one per driver call.
    """
    resolved = driver_url(url)
    if resolved.startswith("sqlite"):
        path = resolved.split(":///", 1)[1] if ":///" in resolved else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Transactions are begun and ended explicitly (see _tune_sqlite), so the pool need not
        # roll back every connection it takes back.
        engine = create_engine(
            resolved,
            connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_reset_on_return=None,
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(resolved, pool_size=POOL_SIZE, max_overflow=POOL_SIZE, pool_pre_ping=True)


def _tune_sqlite(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's events own transaction start, so writers can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={_SQLITE_WAL_CHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={_SQLITE_WAL_CHECKPOINT_PAGES * 4096}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes the lock before reading, so read-merge-write never loses an update.
        # Readers stay in autocommit: each statement sees a consistent WAL snapshot, and a
        # lookup costs one round trip to the driver thread instead of three.
        if connection.get_execution_options().get(WRITE_FLAG):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


MIGRATION_LOCK = 746510


def _upgrade(connection: Connection, script_location: Path, lock_id: int) -> None:
    if connection.dialect.name == "postgresql":
        # Several processes may start at once on one database.
        connection.execute(text(f"SELECT pg_advisory_xact_lock({int(lock_id)})"))
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def migrate(
    engine: Engine,
    *,
    script_location: Path = MIGRATIONS,
    lock_id: int = MIGRATION_LOCK,
    what: str = "database",
) -> None:
    """Apply pending migrations from ``script_location`` (idempotent, concurrent-start safe).

    Raises:
        StoreError: the database refused the migration.
    """
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_FLAG: True})
            with conn.begin():
                _upgrade(conn, script_location, lock_id)
    except SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise StoreError(
            f"cannot migrate the {what} schema at {where}: {describe(exc)}{_read_only_hint(engine)}"
        ) from exc


def _read_only_hint(engine: Engine) -> str:
    """Why SQLite could not write, when the file or its directory is read-only."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        return ""
    file = Path(path).resolve()
    for place in (file, file.parent):
        if place.exists() and not os.access(place, os.W_OK):
            return f" ({place} is read-only; the node must be able to write there)"
    return ""
