"""Fixtures shared by the whole suite: a clean environment, fake time, stores on both databases."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from dtim.model import FakeClock
from dtim.store import Store

settings.register_profile(
    "fast", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

POSTGRES_URL = os.environ.get("DTIM_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy, SSL or DTIM settings leak in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("DTIM__") or name in {"DTIM_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"}:
            monkeypatch.delenv(name, raising=False)
        if name.lower() in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when the test says so."""
    return FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL to a fresh PostgreSQL schema, dropped afterwards (needs DTIM_TEST_DATABASE_URL)."""
    if not POSTGRES_URL:
        pytest.skip("DTIM_TEST_DATABASE_URL is not set")
    schema = f"dtim_test_{uuid.uuid4().hex[:12]}"
    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in plain else "?"
    try:
        yield f"{plain}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL to a fresh PostgreSQL schema, dropped afterwards (needs DTIM_TEST_DATABASE_URL)."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A database URL for each backend: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/dtim.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A connected, migrated, empty store on each backend."""
    opened = Store(store_url)
    await opened.connect()
    try:
        yield opened
    finally:
        await opened.close()
