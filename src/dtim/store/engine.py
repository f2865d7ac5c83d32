"""Database engines for SQLite (default) and PostgreSQL, and schema migration on start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dtim.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_FLAG = "dtim_write"
_BUSY_TIMEOUT_MS = 30_000


def async_url(url: str) -> str:
    """Map a user-facing URL to the asyncio driver SQLAlchemy should use.

    Raises:
        StoreError: the scheme is neither SQLite nor PostgreSQL.
    """
    if url.startswith("sqlite:///") or url == "sqlite://":
        return "sqlite+aiosqlite" + url[len("sqlite") :]
    if url.startswith("sqlite+aiosqlite://"):
        return url
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise StoreError(f"unsupported database URL scheme in {redact_url(url)!r} (use sqlite:/// or postgresql://)")


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def make_engine(url: str) -> AsyncEngine:
    """Create the engine; SQLite gets WAL, a busy timeout and write transactions that lock early."""
    driver_url = async_url(url)
    if driver_url.startswith("sqlite"):
        path = driver_url.split(":///", 1)[1] if ":///" in driver_url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(driver_url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})
        _tune_sqlite(engine)
        return engine
    return create_async_engine(driver_url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _tune_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's events own transaction start, so writers can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes the lock before reading, so read-merge-write never loses an update.
        mode = "BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE_FLAG) else "BEGIN"
        connection.exec_driver_sql(mode)


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several node processes may start at once on one database.
        connection.execute(text("SELECT pg_advisory_xact_lock(746510)"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending migration (idempotent, safe with concurrent starters).

    Raises:
        StoreError: the database refused the migration.
    """
    try:
        async with engine.connect() as conn:
            await conn.execution_options(**{WRITE_FLAG: True})
            async with conn.begin():
                await conn.run_sync(_upgrade)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the database schema: {exc}") from exc
