"""Two ``dtim node run`` processes of one node on one PostgreSQL: one leads; kill -9 it, the
other takes over within one gossip interval, and both serve the APIs meanwhile."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from dtim.service import LEADER_STATE_KEY
from tests.mesh.cluster import MeshNode, free_port, init_homes

pytestmark = pytest.mark.postgres

GOSSIP_INTERVAL = 6.0
"""Seconds between gossip rounds; the leader is re-checked every third of it."""
START = 90.0
"""Seconds allowed for both processes to start on a busy machine."""


@dataclass
class SharedProcess(MeshNode):
    """A node process using the shared PostgreSQL database."""

    database_url: str = ""

    def environment(self) -> dict[str, str]:
        """The mesh node's overrides plus the shared database and a slower gossip interval."""
        env = super().environment()
        env["DTIM__STORAGE__DATABASE_URL"] = self.database_url
        env["DTIM__NETWORK__GOSSIP_INTERVAL_SECONDS"] = str(GOSSIP_INTERVAL)
        env["DTIM__ADMIN__TLS"] = "true"  # remote sensors reach the admin API over HTTPS
        return env

    def serving(self) -> bool:
        """Its admin listener answers /healthz over HTTPS (node certificate, checked)."""
        trusted = ssl.create_default_context(cafile=str(self.home / "certs" / "ca.crt"))
        url = f"https://127.0.0.1:{self.admin_port}/healthz"
        try:
            return httpx.get(url, verify=trusted, timeout=2).is_success
        except httpx.HTTPError:
            return False


def _leader(url: str) -> str | None:
    """The ``host:pid`` the leader wrote into the store, if any yet."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT value FROM state WHERE key = %s", (LEADER_STATE_KEY,)
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return None  # not migrated yet
    return None if row is None else str(json.loads(row[0])["process"])


def _wait(
    condition: Callable[[], bool], what: str, timeout: float, processes: list[SharedProcess]
) -> float:
    begun = time.monotonic()
    while not condition():
        for process in processes:
            if process.process is not None and process.process.poll() not in (None, -9):
                raise AssertionError(f"{process.name} exited:\n{_logs(processes)}")
        if time.monotonic() - begun > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}\n{_logs(processes)}")
        time.sleep(0.05)  # polling a condition with a deadline
    return time.monotonic() - begun


def _logs(processes: list[SharedProcess]) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.log.read_text(errors='replace')[-3000:]}"
        for p in processes
        if p.log.exists()
    )


@pytest.fixture
def processes(tmp_path: Path, postgres_schema_url: str) -> Iterator[list[SharedProcess]]:
    """Two processes of one node home, on distinct ports, sharing a fresh PostgreSQL schema."""
    [made] = init_homes(tmp_path, ["node"])
    pair = [
        SharedProcess(name, made.home, free_port(), free_port(), database_url=postgres_schema_url)
        for name in ("a", "b")
    ]
    try:
        yield pair
    finally:
        for process in pair:
            process.kill()


def test_the_other_process_takes_over_when_the_leader_is_killed(
    processes: list[SharedProcess], postgres_schema_url: str
) -> None:
    for process in processes:
        process.start()  # together: they race for the lock
    _wait(lambda: _leader(postgres_schema_url) is not None, "a leader", START, processes)
    _wait(lambda: all(p.serving() for p in processes), "both admin APIs", START, processes)
    by_name = {_leader_name(p): p for p in processes}
    leader = by_name[str(_leader(postgres_schema_url))]
    [follower] = [p for p in processes if p is not leader]
    assert "this process leads" in leader.log.read_text()
    assert "this process leads" not in follower.log.read_text()

    leader.kill()
    assert follower.process is not None
    took = _wait(
        lambda: _leader(postgres_schema_url) == _leader_name(follower),
        "the follower takes the lead",
        GOSSIP_INTERVAL * 3,
        processes,
    )
    assert took < GOSSIP_INTERVAL, f"takeover took {took:.1f} s\n{_logs(processes)}"
    assert "this process leads" in follower.log.read_text()
    assert follower.serving()


def _leader_name(process: SharedProcess) -> str:
    """What the process writes as its name (``host:pid``)."""
    import socket

    assert process.process is not None
    return f"{socket.gethostname()}:{process.process.pid}"
