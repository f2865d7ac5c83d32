"""Store errors carry the database's own message: no SQL text, no parameters (they may hold
indicator values and evidence), and migration errors name the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dtim.errors import StoreError
from dtim.store.engine import describe, make_engine, migrate


def test_describe_keeps_only_the_database_message(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    try:
        with pytest.raises(SQLAlchemyError) as caught, engine.connect() as conn:
            conn.execute(text("INSERT INTO missing VALUES (:secret)"), {"secret": "45.1.2.3"})
    finally:
        engine.dispose()
    assert "[SQL" in str(caught.value)  # what SQLAlchemy says, and what must not leak
    assert describe(caught.value) == "no such table: missing"


def test_a_failed_migration_names_the_database(tmp_path: Path) -> None:
    database = tmp_path / "dtim.db"
    database.write_bytes(b"this is not a SQLite database, but it is long enough to look like one")
    engine = make_engine(f"sqlite:///{database}")
    try:
        with pytest.raises(StoreError) as caught:
            migrate(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert message.startswith(f"cannot migrate the database schema at sqlite:///{database}: ")
    assert "[SQL" not in message
