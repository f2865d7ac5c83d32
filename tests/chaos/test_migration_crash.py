"""``kill -9`` inside a schema migration, on SQLite and PostgreSQL; a normal start then works.

The migration runs in one transaction, so a process killed at any statement
of it leaves the schema exactly as before (nothing half-created), SQLite
passes ``PRAGMA integrity_check``, and the next ``dtim node run`` migrates to
head and serves. The killed process is paused right before its N-th write
(:mod:`tests.chaos.migrate_paused`), so each kill lands inside the migration.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from dtim.store.engine import MIGRATIONS
from tests.chaos.harness import ChaosNode, integrity, wait_for
from tests.mesh.cluster import indicators, public_ips

pytestmark = pytest.mark.timeout(300)

Homes = Callable[[Sequence[str]], list[ChaosNode]]
FAST_PAUSES = (18,)
"""Writes before which the fast tests kill (one in the middle; the slow test tries every one)."""


def head() -> str:
    """The newest migration revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    revision = ScriptDirectory.from_config(config).get_current_head()
    assert revision is not None
    return revision


def writes_in_migration(url: str) -> int:
    """How many writes a full migration of an empty database makes (migrates ``url``)."""
    done = paused_migration(url, 1_000_000)
    assert done.startswith("done "), done
    return int(done.split()[1])


def paused_migration(url: str, pause_before: int) -> str:
    """Run the migration in a subprocess; SIGKILL it when it pauses. Returns what it printed."""
    with subprocess.Popen(  # our own module
        [sys.executable, "-m", "tests.chaos.migrate_paused", url, str(pause_before)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            said = process.stdout.readline().strip()  # blocks until it pauses or finishes
            if said.startswith("paused"):
                assert process.poll() is None
                process.kill()  # SIGKILL, inside the open migration transaction
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        problem = "" if said else process.stderr.read()
    assert said, problem
    return said


def sqlite_tables(database: str) -> list[str]:
    """Table names of a SQLite file."""
    with sqlite3.connect(database) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


def postgres_tables(url: str) -> list[str]:
    """Table names in the URL's schema."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
    return [str(r[0]) for r in rows]


def start_and_use(node: ChaosNode, version: Callable[[], str | None]) -> None:
    """Start the node on the half-migrated database; it migrates to head, is ready, stores."""
    node.start()
    wait_for(node.ready, "the node ready after the crashed migration", 90, [node])
    assert version() == head()
    node.stop()
    assert node.process is not None
    assert node.process.returncode == 0, node.log_text()[-2000:]


@pytest.mark.parametrize("pauses", [FAST_PAUSES, pytest.param(None, marks=pytest.mark.slow)])
def test_kill_during_sqlite_migration(homes: Homes, pauses: tuple[int, ...] | None) -> None:
    (node,) = homes(["m"])
    database = str(node.database)
    url = f"sqlite:///{database}"
    if pauses is None:  # every statement of the migration, measured on a scratch file
        total = writes_in_migration(f"sqlite:///{node.home / 'scratch.db'}")
        pauses = tuple(range(1, total + 1))
    for pause in pauses:
        said = paused_migration(url, pause)
        assert said.startswith("paused"), f"the migration ended before write {pause}: {said}"
        assert integrity(node.database) == "ok"
        assert sqlite_tables(database) == [], f"killed before write {pause}: half a schema"

    def version() -> str | None:
        with sqlite3.connect(database) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])

    start_and_use(node, version)
    assert integrity(node.database) == "ok"
    node.add(indicators(public_ips(3)))  # the migrated store takes writes
    assert len(node.query("SELECT value FROM indicators")) == 3


@pytest.mark.postgres
def test_kill_during_postgres_migration(homes: Homes, postgres_schema_url: str) -> None:
    (node,) = homes(["p"])
    for pause in FAST_PAUSES:
        said = paused_migration(postgres_schema_url, pause)
        assert said.startswith("paused"), said
        assert postgres_tables(postgres_schema_url) == [], f"killed before write {pause}"
    node.settings["DTIM__STORAGE__DATABASE_URL"] = postgres_schema_url

    def version() -> str | None:
        with psycopg.connect(postgres_schema_url) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])

    start_and_use(node, version)
    with psycopg.connect(postgres_schema_url) as conn:
        assert conn.execute("SELECT count(*) FROM indicators").fetchone() == (0,)
