"""Real meshes of ``dtim node run`` processes on 127.0.0.1, homes from ``dtim init``.

Every process a fixture starts is killed when it ends (and by a watchdog at
the hard stop, whatever the test is doing). Tests wait on conditions with
deadlines: the nodes' stores are read directly (SQLite, read-only), which
costs a millisecond where a ``dtim`` command costs a second.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from dtim.crypto.auditlog import AuditLog
from dtim.crypto.bodysig import sign_body
from dtim.crypto.httpauth import SignedRequestAuth
from dtim.crypto.identity import load_identity, load_public_identity
from dtim.crypto.keyring import Keyring
from dtim.crypto.signatures import MessageSigner
from dtim.crypto.tls import client_context
from dtim.demo.mesh import free_port
from dtim.model import Indicator, make_indicator
from dtim.model.indicator import JsonObject, JsonValue
from dtim.store import Store

INTERVAL = 2.0
"""Seconds between gossip rounds (DTIM__NETWORK__GOSSIP_INTERVAL_SECONDS)."""
HARD_STOP = 60.0
"""A test still running after this many seconds has every node of its mesh killed."""
FORMATION = 90.0
"""Seconds allowed for ``dtim node run`` to start everywhere and the nodes to pin each other
(generous: on a busy 2-core machine, starting six Python processes takes a while)."""
CLI = (
    "import sys\n"
    "from dtim.cli import main, peers\n"
    "if not any(g.name == 'peers' for g in main.app.registered_groups):\n"
    "    main.app.add_typer(peers.app, name='peers')\n"
    "sys.exit(main.run(sys.argv[1:]))\n"
)
"""``dtim`` with the ``peers`` group mounted whether or not the root app mounts it yet."""


def dtim(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run the ``dtim`` CLI in a subprocess; fails the test on a non-zero exit."""
    done = subprocess.run(  # the exit code is checked below with the output
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith("DTIM")},
    )
    assert done.returncode == 0, f"dtim {' '.join(args)} failed:\n{done.stderr}"
    return done


@dataclass
class MeshNode:
    """One ``dtim node run`` process and its home."""

    name: str
    home: Path
    port: int
    admin_port: int
    node_id: str = ""
    public_key: str = ""
    admin_password: str = ""
    """The dashboard password ``dtim init --json`` printed (once)."""
    peers: list[JsonObject] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    """More ``DTIM__SECTION__KEY`` overrides for this node."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The peer API's URL."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The admin listener's URL (dashboard, admin API, /metrics)."""
        scheme = "https" if self.settings.get("DTIM__ADMIN__TLS") == "true" else "http"
        return f"{scheme}://127.0.0.1:{self.admin_port}"

    @property
    def log(self) -> Path:
        """Where the process writes its log."""
        return self.home.parent / f"{self.name}.log"

    @property
    def database(self) -> Path:
        """The node's SQLite file."""
        return self.home / "data" / "dtim.db"

    def environment(self) -> dict[str, str]:
        """The node's settings overrides."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTIM")}
        env.update(
            DTIM__NETWORK__LISTEN_ADDRESS="127.0.0.1",
            DTIM__NETWORK__LISTEN_PORT=str(self.port),
            DTIM__ADMIN__LISTEN_PORT=str(self.admin_port),
            DTIM__NETWORK__GOSSIP_INTERVAL_SECONDS=str(INTERVAL),
            DTIM__NETWORK__REQUEST_TIMEOUT_SECONDS="3",
            DTIM__NETWORK__DEFAULT_PEERS=json.dumps(self.peers),
        )
        env.update(self.settings)
        return env

    def start(self) -> None:
        """Start ``dtim node run`` (appending to its log)."""
        assert self.process is None or self.process.poll() is not None
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # our own CLI
                [sys.executable, "-c", CLI, "node", "run", "--home", str(self.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
            )

    def kill(self) -> None:
        """SIGKILL: the node gets no chance to finish anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after five seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def alive(self) -> bool:
        """The process is running."""
        return self.process is not None and self.process.poll() is None

    def values(self) -> set[str]:
        """Indicator values in the node's store (empty before it exists)."""
        if not self.database.exists():
            return set()
        try:
            with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as conn:
                return {row[0] for row in conn.execute("SELECT value FROM indicators")}
        except sqlite3.OperationalError:
            return set()  # not migrated yet

    def pinned(self) -> int:
        """How many peers' CAs the node has pinned."""
        if not self.database.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as conn:
                return int(conn.execute("SELECT count(*) FROM peer_pins").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # not migrated yet

    def tlp_of(self, value: str) -> str | None:
        """The stored TLP of one value."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT tlp FROM indicators WHERE value = ?", (value,)).fetchone()
        return None if row is None else str(row[0])

    def add(self, indicators: Sequence[Indicator]) -> None:
        """Store own indicators (as a watcher or analyst would), while the node runs."""

        async def write() -> None:
            async with Store(f"sqlite:///{self.database}") as store:
                await store.upsert_indicators(list(indicators))

        asyncio.run(write())

    def audit(self) -> list[JsonObject]:
        """Every record of the node's encrypted audit log."""
        log = AuditLog(self.home / "data" / "logs", Keyring.load(self.home / "keys"))
        return [record for day in log.days() for record in log.read(day)]

    def signed_post(self, target: MeshNode, path: str, body: JsonObject) -> httpx.Response:
        """A request to ``target`` with this node's client certificate and signature.

        Raises:
            httpx.HTTPError: the connection was refused (e.g. at the TLS handshake).
        """
        identity = load_identity(self.home / "keys")
        context = client_context(
            self.home / "certs" / "node.crt",
            self.home / "certs" / "node.key",
            trusted_pems=[(target.home / "certs" / "ca.crt").read_text()],
        )
        auth = SignedRequestAuth(
            MessageSigner(identity),
            recipient=target.node_id,
            responder_public_key=target.public_key,
        )
        with httpx.Client(verify=context, auth=auth, timeout=5) as client:
            return client.post(target.url + path, content=json.dumps(sign_body(body, identity)))


@dataclass
class Mesh:
    """Nodes started together, and the hard stop that ends them."""

    root: Path
    nodes: list[MeshNode]
    processes: list[MeshNode]
    outsider: MeshNode | None = None
    """A running node that approved ``n0``; no mesh node approved it."""
    started: float = field(default_factory=time.monotonic)

    def formed(self) -> bool:
        """Every node pinned the CA of every peer it approved (the outsider: n0's)."""
        nodes = self.nodes if self.outsider is None else [*self.nodes, self.outsider]
        return all(n.pinned() >= len(n.peers) for n in nodes)

    def __getitem__(self, index: int) -> MeshNode:
        return self.nodes[index]

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float) -> float:
        """Poll ``condition`` until true; returns the seconds it took.

        Raises:
            AssertionError: not true within ``timeout`` (with the nodes' logs).
        """
        begun = time.monotonic()
        while not condition():
            for node in self.nodes:
                if node.process is not None and not node.alive() and node.process.returncode != -9:
                    raise AssertionError(f"{node.name} exited:\n{self.logs()}")
            if time.monotonic() - begun > timeout:
                raise AssertionError(f"not within {timeout:.0f} s: {what}\n{self.logs()}")
            time.sleep(0.05)  # polling a condition with a deadline
        return time.monotonic() - begun

    def logs(self) -> str:
        """The tail of every node's log."""
        return "\n".join(
            f"--- {n.name}\n{n.log.read_text(errors='replace')[-3000:]}"
            for n in self.nodes
            if n.log.exists()
        )


def stop_all(nodes: Sequence[MeshNode]) -> None:
    """SIGTERM every node at once, then wait (SIGKILL after five seconds)."""
    for node in nodes:
        if node.alive():
            assert node.process is not None
            node.process.terminate()
    for node in nodes:
        node.stop()


def init_homes(root: Path, names: Sequence[str]) -> list[MeshNode]:
    """``dtim init`` every home at once (in parallel processes)."""
    nodes = [MeshNode(name, root / name, free_port(), free_port()) for name in names]
    running = [
        subprocess.Popen(  # our own CLI
            [
                sys.executable,
                "-c",
                CLI,
                "init",
                "--home",
                str(n.home),
                "--endpoint",
                n.url,
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("DTIM")},
        )
        for n in nodes
    ]
    for node, process in zip(nodes, running, strict=True):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
        created = json.loads(out)
        node.node_id = created["node_id"]
        node.admin_password = created["admin_password"]
        node.public_key = load_public_identity(node.home / "keys")[1]
    return nodes


def approve_all(nodes: Sequence[MeshNode], groups: dict[tuple[str, str], list[str]]) -> None:
    """Every node approves every other through ``network.default_peers`` (keys pinned)."""
    for node in nodes:
        node.peers = [
            {
                "endpoint": other.url,
                "public_key": other.public_key,
                "groups": list[JsonValue](groups.get((node.name, other.name), [])),
            }
            for other in nodes
            if other is not node
        ]


def approve_links(nodes: Sequence[MeshNode], links: Sequence[tuple[int, int]]) -> None:
    """Only the linked nodes approve each other (both ways): a partial mesh."""
    for node in nodes:
        node.peers = []
    for one, other in links:
        for node, peer in ((nodes[one], nodes[other]), (nodes[other], nodes[one])):
            node.peers.append({"endpoint": peer.url, "public_key": peer.public_key})


def indicators(values: Sequence[str], **fields: Any) -> list[Indicator]:
    """Own indicators seen now (source ``manual``)."""
    now = datetime.now(UTC)
    fields.setdefault("sources", ["manual"])
    fields.setdefault("confidence", 80)
    return [make_indicator(v, "ipv4", now=now, **fields) for v in values]


def public_ips(count: int, start: int = 0) -> list[str]:
    """Distinct public (non-warninglisted) IPv4 addresses."""
    return [
        f"45.{155 + i // 65025}.{i // 255 % 255}.{i % 255 + 1}" for i in range(start, start + count)
    ]
