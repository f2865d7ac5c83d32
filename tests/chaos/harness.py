"""Real ``dtim node run`` processes for fault tests: killed with SIGKILL, restarted, inspected.

A :class:`ChaosNode` is a :class:`tests.mesh.cluster.MeshNode` with extra
settings, an optional command prefix (``faketime``) and an optional
``preexec_fn`` (resource limits). Checks read the node's SQLite file directly
and poll with deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import httpx

from tests.mesh.cluster import CLI, MeshNode, init_homes

POLL = 0.05
"""Seconds between two looks at a condition."""


@dataclass
class ChaosNode(MeshNode):
    """A node process with extra settings, a command prefix and a ``preexec_fn``."""

    settings: dict[str, str] = field(default_factory=dict)
    prefix: list[str] = field(default_factory=list)
    preexec: Callable[[], None] | None = None
    exits: list[int] = field(default_factory=list)
    database_file: Path | None = None
    """Where the database lives when not in the home (``storage.database_url`` set to it)."""

    @property
    def database(self) -> Path:
        """The node's SQLite file."""
        return self.database_file or self.home / "data" / "dtim.db"

    def keep_database_at(self, path: Path) -> None:
        """Put the node's SQLite database at ``path``."""
        self.database_file = path
        self.settings["DTIM__STORAGE__DATABASE_URL"] = f"sqlite:///{path}"

    def environment(self) -> dict[str, str]:
        """The mesh node's settings plus :attr:`settings`."""
        env = super().environment()
        env.update(self.settings)
        return env

    def start(self) -> None:
        """Start ``dtim node run`` (appending to its log)."""
        assert self.process is None or self.process.poll() is not None
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # our own CLI
                [*self.prefix, sys.executable, "-c", CLI, "node", "run", "--home", str(self.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                preexec_fn=self.preexec,  # only resource limits, set before exec
            )

    def sigkill(self) -> None:
        """``kill -9`` the process by its pid, and reap it."""
        assert self.process is not None
        assert self.process.poll() is None, "not running"
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.exits.append(self.process.returncode)

    def exit_code(self, timeout: float) -> int:
        """Wait for the process to end on its own; its exit code."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def ready(self) -> bool:
        """``/readyz`` on the admin listener answers 200."""
        return self.readyz() == 200

    def readyz(self) -> int | None:
        """The status of ``/readyz`` (None while nothing listens)."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.admin_port}/readyz", timeout=2).status_code
        except httpx.HTTPError:
            return None

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of one query on the node's database (read-only; empty before it exists)."""
        if not self.database.exists():
            return []
        try:
            with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as conn:
                return list(conn.execute(sql, params))
        except sqlite3.OperationalError:
            return []  # not migrated yet

    def log_text(self) -> str:
        """Everything the process logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def integrity(database: Path) -> str:
    """``PRAGMA integrity_check`` of a SQLite file (opened read-write so a WAL is recovered)."""
    with sqlite3.connect(database, timeout=10) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "\n".join(str(row[0]) for row in rows)


def chaos_homes(root: Path, names: Sequence[str]) -> list[ChaosNode]:
    """``dtim init`` a home per name (in parallel), as :class:`ChaosNode` objects."""
    return [
        ChaosNode(**{f.name: getattr(node, f.name) for f in fields(MeshNode)})
        for node in init_homes(root, names)
    ]


def wait_for(
    condition: Callable[[], bool],
    what: str,
    timeout: float,
    nodes: Sequence[ChaosNode] = (),
    *,
    may_exit: bool = False,
) -> float:
    """Poll ``condition`` until true; returns the seconds it took.

    Raises:
        AssertionError: not true within ``timeout``, or one of ``nodes`` exited on its own
            (unless ``may_exit``), with the nodes' logs.
    """
    begun = time.monotonic()
    while not condition():
        if not may_exit:
            for node in nodes:
                process = node.process
                if process is not None and process.poll() is not None and process.returncode != -9:
                    raise AssertionError(f"{node.name} exited {process.returncode}:\n{logs(nodes)}")
        if time.monotonic() - begun > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}\n{logs(nodes)}")
        time.sleep(POLL)  # polling a condition with a deadline
    return time.monotonic() - begun


def logs(nodes: Sequence[ChaosNode]) -> str:
    """The tail of every node's log."""
    return "\n".join(f"--- {n.name}\n{n.log_text()[-4000:]}" for n in nodes)


def append_config(node: MeshNode, text: str) -> None:
    """Append TOML to the node's config file (tables the environment cannot set)."""
    with (node.home / "config" / "dtim.toml").open("a", encoding="utf-8") as config:
        config.write("\n" + text.strip() + "\n")
