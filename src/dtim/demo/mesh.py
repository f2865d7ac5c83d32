"""Start, feed, watch and tear down a demo mesh of real ``dtim`` processes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess  # nosec B404  # starts the demo's own dtim processes
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from dtim.config import NodeHome
from dtim.config.loader import load_settings
from dtim.demo.generator import (
    CANARIES,
    EICAR,
    AttackPlan,
    fail2ban_ban,
    nginx_access,
    signature_database,
    ufw_scan,
)
from dtim.errors import DTIMError
from dtim.model import Indicator
from dtim.privacy import Destination
from dtim.service import peers_command
from dtim.store import IndicatorQuery, Store
from dtim.web.node import privacy_filter_for

LOCAL_SOURCES = frozenset(
    {
        "ufw",
        "fail2ban",
        "nginx_access",
        "nginx_error",
        "apache_access",
        "apache_error",
        "suricata",
        "zeek",
        "clamav",
        "manual",
    }
)
COMMAND_TIMEOUT = 60
PRIVACY_LEVELS = ("moderate", "strict", "open")
"""Demo nodes take these levels in turn, to show what each one lets out."""
INFECTED_FILE = "invoice-acme-canary.pdf.exe"
"""The EICAR file dropped in a node's scan directory (its name is a canary: paths stay home)."""


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LISTEN_PORTS_FROM = 10_000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range.

    A port the OS hands out for ``bind(0)`` comes from the range it also gives
    outgoing connections, so between this call and the node binding it another
    process's connection could take it. Ports below that range are only ever
    taken by a listener that asks for them.
    """
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768  # Linux's default
    generator = random.SystemRandom()
    for _ in range(200):
        port = generator.randrange(_LISTEN_PORTS_FROM, max(low, _LISTEN_PORTS_FROM + 1))
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:  # a crowded machine: any free port will do
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dtim_command(*args: str) -> list[str]:
    """The argv that runs this very DTIM installation."""
    return [sys.executable, "-m", "dtim.cli", *args]


@dataclass
class DemoNode:
    """One node of the demo: its home, ports, log files and process."""

    name: str
    home: Path
    port: int
    admin_port: int
    node_id: str = ""
    fingerprint: str = ""
    admin_password: str = ""
    privacy_level: str = "moderate"
    clamav: bool = False
    """Whether ClamAV scans :attr:`scan_dir` (clamscan is installed)."""
    env: dict[str, str] = field(default_factory=dict)
    """The DTIM__ settings the node process runs with (set by :meth:`DemoMesh.start`)."""
    process: subprocess.Popen[bytes] | None = None
    first_seen: dict[str, float] = field(default_factory=dict)
    """indicator id -> wall time this node first held it."""

    @property
    def logs(self) -> Path:
        """Where the demo writes this node's watched log files."""
        return self.home / "logs"

    @property
    def scan_dir(self) -> Path:
        """The directory ClamAV scans for new files."""
        return self.home / "scan"

    @property
    def database(self) -> str:
        """The node's SQLite URL."""
        return f"sqlite:///{self.home}/data/dtim.db"

    def environment(self, registry_url: str, interval: float) -> dict[str, str]:
        """Settings for this node, as DTIM__SECTION__KEY variables."""
        clamav = {"DTIM__WATCHERS__CLAMAV_SCAN_DIR": str(self.scan_dir)} if self.clamav else {}
        return clamav | {
            "DTIM__NETWORK__LISTEN_ADDRESS": "127.0.0.1",
            "DTIM__NETWORK__LISTEN_PORT": str(self.port),
            "DTIM__ADMIN__LISTEN_PORT": str(self.admin_port),
            "DTIM__NETWORK__GOSSIP_INTERVAL_SECONDS": str(interval),
            "DTIM__NETWORK__REGISTRY_URL": registry_url,
            "DTIM__NETWORK__REGISTRY_OPT_IN": "true",
            "DTIM__WATCHERS__START_AT": "beginning",
            "DTIM__WATCHERS__NGINX_ACCESS_LOG": str(self.logs / "nginx-access.log"),
            "DTIM__WATCHERS__UFW_LOG_PATH": str(self.logs / "ufw.log"),
            "DTIM__WATCHERS__FAIL2BAN_LOG_PATH": str(self.logs / "fail2ban.log"),
            "DTIM__PRIVACY__OWN_NETWORKS": "10.66.0.0/16",
            "DTIM__PRIVACY__OWN_DOMAINS": "acme-canary.internal,acme-canary.example",
            "DTIM__PRIVACY__ORG_NAMES": "acme-canary",
            "DTIM__PRIVACY__LEVEL": self.privacy_level,
        }


@dataclass
class DemoMesh:
    """A registry and N nodes in a temporary directory."""

    root: Path
    nodes: list[DemoNode]
    registry_home: Path
    registry_port: int
    interval: float
    say: Callable[[str], None]
    registry: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(
        cls, root: Path, count: int, interval: float, say: Callable[[str], None]
    ) -> DemoMesh:
        """Make homes with `dtim init` (keys, certificates, config): a registry, ``count`` nodes."""
        registry_port = free_port()
        registry_home = root / "registry"
        _run(
            "init",
            "--home",
            str(registry_home),
            "--endpoint",
            f"https://127.0.0.1:{registry_port}",
            "--json",
        )
        nodes = []
        clamav = clamav_available(say)
        for index in range(count):
            port = free_port()
            node = DemoNode(
                f"node{index + 1}",
                root / f"node{index + 1}",
                port,
                free_port(),
                privacy_level=PRIVACY_LEVELS[index % len(PRIVACY_LEVELS)],
                clamav=clamav,
            )
            created = orjson.loads(
                _run(
                    "init",
                    "--home",
                    str(node.home),
                    "--endpoint",
                    f"https://127.0.0.1:{port}",
                    "--json",
                )
            )
            node.node_id, node.fingerprint, node.admin_password = (
                created["node_id"],
                created["fingerprint"],
                created["admin_password"],
            )
            node.logs.mkdir(parents=True, exist_ok=True)
            # Nodes trust the demo registry's own CA, as an operator would install it.
            (node.home / "certs" / "registry-ca").mkdir(parents=True, exist_ok=True)
            shutil.copy(
                registry_home / "certs" / "ca.crt",
                node.home / "certs" / "registry-ca" / "demo-registry.crt",
            )
            for name in ("nginx-access.log", "ufw.log", "fail2ban.log"):
                (node.logs / name).touch()
            if clamav:
                configure_clamav(node)
            nodes.append(node)
            say(
                f"{node.name}: home {node.home}, id {node.node_id[:16]}…, "
                f"fingerprint {node.fingerprint}"
            )
        return cls(root, nodes, registry_home, registry_port, interval, say)

    @property
    def infected_node(self) -> DemoNode:
        """The node that gets the infected file: one at level open, whose tags (the signature
        name) leave with the hashes, else the first."""
        return next((n for n in self.nodes if n.privacy_level == "open"), self.nodes[0])

    @property
    def registry_url(self) -> str:
        """The registry's URL."""
        return f"https://127.0.0.1:{self.registry_port}"

    def start(self) -> None:
        """Start the registry and every node as separate processes."""
        argv = [
            "registry",
            "run",
            "--home",
            str(self.registry_home),
            "--port",
            str(self.registry_port),
        ]
        # the shortest heartbeat nodes accept: demo nodes refresh (and discover) every 10 s
        heartbeat = {"DTIM__REGISTRY__HEARTBEAT_SECONDS": "10"}
        self.registry = _spawn(argv, heartbeat, self.root / "registry.log")
        for node in self.nodes:
            node.env = node.environment(self.registry_url, self.interval)
            node.process = _spawn(
                ["node", "run", "--home", str(node.home)], node.env, self.root / f"{node.name}.log"
            )

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after a grace period)."""
        processes = [n.process for n in self.nodes if n.process]
        processes += [self.registry] if self.registry else []
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)

    def check_alive(self) -> None:
        """Fail with the process log when a demo process died.

        Raises:
            DTIMError: a process exited.
        """
        named = [(n.name, n.process) for n in self.nodes] + [("registry", self.registry)]
        for name, process in named:
            if process is not None and process.poll() is not None:
                log = (self.root / f"{name}.log").read_text(errors="replace")[-2000:]
                raise DTIMError(f"{name} exited with code {process.returncode}:\n{log}")

    async def approve_all(self, timeout: float) -> None:  # noqa: ASYNC109  # named in the error; polls between blocking calls
        """Wait until every node lists every other as pending, then approve them all."""
        deadline = time.monotonic() + timeout
        wanted = {n.node_id for n in self.nodes}
        while True:
            self.check_alive()
            listing = {node.name: await _peers(node) for node in self.nodes}
            if all(
                wanted - {node.node_id} <= {p["id"] for p in listing[node.name]}
                for node in self.nodes
            ):
                break
            if time.monotonic() > deadline:
                raise DTIMError(
                    f"nodes did not discover each other through the registry within {timeout:.0f} s"
                )
            await asyncio.sleep(0.5)
        self.say("Every node discovered the others through the registry, as pending peers.")
        self.say(
            "A real deployment approves each peer by hand after comparing its fingerprint; "
            "the demo approves them now."
        )
        for node in self.nodes:
            for peer in listing[node.name]:
                if peer["id"] in wanted and peer["status"] != "approved":
                    await peers_command(_home(node), "approve", peer["id"])

    def feed(self, plan: AttackPlan) -> dict[str, list[str]]:
        """Append attack traffic to each node's logs; returns the attacker addresses per node."""
        shared, own = plan.attackers(len(self.nodes))
        now = datetime.now(UTC)
        fed: dict[str, list[str]] = {}
        for node, attackers in zip(self.nodes, own, strict=True):
            mine = [*shared, *attackers]
            fed[node.name] = mine
            with (
                (node.logs / "nginx-access.log").open("a") as nginx,
                (node.logs / "ufw.log").open("a") as ufw,
                (node.logs / "fail2ban.log").open("a") as f2b,
            ):
                for position, address in enumerate(mine):
                    kind = position % 3
                    if kind == 0:
                        nginx.write("\n".join(nginx_access(address, now, plan.rng)) + "\n")
                    elif kind == 1:
                        ufw.write("\n".join(ufw_scan(address, now, plan.rng)) + "\n")
                    else:
                        f2b.write("\n".join(fail2ban_ban(address, now, plan.rng)) + "\n")
        if self.infected_node.clamav:
            # One infected file on one node: its hashes reach the others through gossip.
            (self.infected_node.scan_dir / INFECTED_FILE).write_text(EICAR, encoding="ascii")
        return fed

    async def snapshot(self) -> dict[str, list[Indicator]]:
        """Every node's indicators, read straight from its store."""
        result: dict[str, list[Indicator]] = {}
        for node in self.nodes:
            async with Store(node.database) as store:
                result[node.name] = await store.list_indicators(IndicatorQuery(limit=10_000))
            now = time.monotonic()
            for item in result[node.name]:
                node.first_seen.setdefault(item.id, now)
        return result


def detected_locally(item: Indicator) -> bool:
    """True when one of this node's own watchers (or its analyst) reported it."""
    return bool(LOCAL_SOURCES & set(item.sources))


def leaks(snapshot: dict[str, list[Indicator]]) -> list[dict[str, str]]:
    """Canary strings found in anything a node received from its peers."""
    found: list[dict[str, str]] = []
    for name, items in snapshot.items():
        for item in items:
            if detected_locally(item):
                continue
            text = orjson.dumps(item.to_json()).decode().lower()
            found.extend(
                {"node": name, "indicator": item.id, "canary": canary}
                for canary in CANARIES
                if canary.lower() in text
            )
    return found


def summarise(mesh: DemoMesh, snapshot: dict[str, list[Indicator]]) -> dict[str, Any]:
    """The JSON summary: per node detected / received, propagation times, leaks."""
    origin: dict[str, float] = {}
    for node in mesh.nodes:
        for item in snapshot[node.name]:
            if detected_locally(item):
                origin[item.id] = min(origin.get(item.id, float("inf")), node.first_seen[item.id])
    per_node = {}
    views = shared_views(mesh, snapshot)
    for node in mesh.nodes:
        items = snapshot[node.name]
        received = [i for i in items if not detected_locally(i)]
        view = views[node.name]
        per_node[node.name] = {
            "node_id": node.node_id,
            "detected": sum(1 for i in items if detected_locally(i)),
            "received": len(received),
            "privacy_level": view["privacy_level"],
            "shared": view["shared"],
            "withheld": view["withheld"],
            "dashboard": f"http://127.0.0.1:{node.admin_port}/",
        }
    spread = []
    latest: list[dict[str, Any]] = []
    values: dict[str, Indicator] = {i.id: i for items in snapshot.values() for i in items}
    for indicator_id, started in origin.items():
        holders = [n.first_seen[indicator_id] for n in mesh.nodes if indicator_id in n.first_seen]
        if len(holders) == len(mesh.nodes):
            spread.append(max(holders) - started)
        item = values[indicator_id]
        latest.append(
            {
                "type": item.type,
                "value": item.value,
                "detected_by": [
                    n.name
                    for n in mesh.nodes
                    if any(i.id == indicator_id and detected_locally(i) for i in snapshot[n.name])
                ],
                "nodes": len(holders),
                "seconds_to_every_node": round(max(holders) - started, 2)
                if len(holders) == len(mesh.nodes)
                else None,
                "started": started,
            }
        )
    latest.sort(key=lambda row: row.pop("started"), reverse=True)
    return {
        "nodes": per_node,
        "indicators": latest,
        "examples": {name: view["example"] for name, view in views.items()},
        "indicators_everywhere": len(spread),
        "seconds_to_every_node": {
            "max": round(max(spread), 2),
            "median": round(sorted(spread)[len(spread) // 2], 2),
        }
        if spread
        else None,
        "leaks": leaks(snapshot),
        "clamav": mesh.infected_node.clamav,
    }


def clamav_available(say: Callable[[str], None]) -> bool:
    """Whether clamscan is on PATH; when it is not, say (once) that the infected file is skipped."""
    if shutil.which("clamscan") is not None:
        return True
    say(
        "ClamAV is not installed (no clamscan on PATH): the infected-file part of the demo "
        "is skipped (apt-get install clamav)."
    )
    return False


def configure_clamav(node: DemoNode) -> None:
    """Give the node a scan directory and the demo's own signature database (no freshclam).

    clamd_socket is empty so clamscan with this database does the scanning: a system clamd
    with the official signatures would name the file a test file, which DTIM keeps local.
    """
    node.scan_dir.mkdir(parents=True, exist_ok=True)
    database = node.home / "clamav-db"
    signature_database(database)
    with (node.home / "config" / "dtim.toml").open("a", encoding="utf-8") as config:
        # a JSON string is a valid TOML basic string (quotes and backslashes escaped)
        quoted = orjson.dumps(str(database)).decode()
        config.write(f'\n[watchers.clamav]\nclamd_socket = ""\ndatabase = {quoted}\n')


def _run(*args: str) -> str:
    result = subprocess.run(  # noqa: S603  # nosec B603  # our own CLI, argv list, no shell
        dtim_command(*args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise DTIMError(f"`dtim {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def _home(node: DemoNode) -> NodeHome:
    environ = {**os.environ, **node.env}
    return NodeHome(root=node.home, settings=load_settings(node.home, environ=environ).settings)


def shared_views(mesh: DemoMesh, snapshot: dict[str, list[Indicator]]) -> dict[str, Any]:
    """Per node: its privacy level and what one of its own detections looks like to a peer."""
    views: dict[str, Any] = {}
    for node in mesh.nodes:
        privacy = privacy_filter_for(_home(node))
        peer = Destination.peer("demo-peer")
        mine = [item for item in snapshot[node.name] if detected_locally(item)]
        shared = [copy for copy in (privacy.share(item, peer) for item in mine) if copy]
        views[node.name] = {
            "privacy_level": node.privacy_level,
            "shared": len(shared),
            "withheld": len(mine) - len(shared),
            "example": shared[0].to_json() if shared else None,
        }
    return views


async def _peers(node: DemoNode) -> list[dict[str, Any]]:
    """The node's peers, read from its store in this process (a CLI run costs seconds)."""
    listed = await peers_command(_home(node), "list")
    assert isinstance(listed, list)  # nosec B101  # peers_command("list") returns a list
    return [dict(peer) for peer in listed if isinstance(peer, dict)]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(  # noqa: S603  # nosec B603  # our own CLI, argv list, no shell
        dtim_command(*args),
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        start_new_session=True,
    )


def remove(root: Path) -> None:
    """Delete the demo directory."""
    shutil.rmtree(root, ignore_errors=True)
