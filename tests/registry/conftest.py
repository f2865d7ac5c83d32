"""Registry fixtures: homes made by ``dtim init``, real registries over TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from dtim.cli.main import run
from dtim.crypto.identity import NodeIdentity, load_identity
from dtim.crypto.tls import ClientCertMode, server_context
from dtim.model.clock import Clock
from dtim.registry.client import RegistryClient, registry_tls_context
from dtim.registry.records import RegistryRecords
from dtim.registry.routes import RegistryOptions, create_registry_app
from dtim.store import Store
from tests.conftest import BACKENDS
from tests.servers import running_server

NODE_NAMES = ("alice", "bob", "carol")


@dataclass(frozen=True)
class Home:
    """A home created by ``dtim init``."""

    name: str
    root: Path
    identity: NodeIdentity
    endpoint: str

    @property
    def ca_pem(self) -> str:
        return (self.root / "certs" / "ca.crt").read_text()

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.root}/data/dtim.db"


def init_home(root: Path, name: str, port: int) -> Home:
    """``dtim init`` a home whose endpoint is https://127.0.0.1:<port>."""
    endpoint = f"https://127.0.0.1:{port}"
    home = root / name
    assert run(["init", "--home", str(home), "--endpoint", endpoint, "--json"]) == 0
    return Home(name, home, load_identity(home / "keys"), endpoint)


@pytest.fixture(scope="session")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Home]:
    """Two registry homes and three node homes, made once for the whole package."""
    root = tmp_path_factory.mktemp("homes")
    made = {name: init_home(root, name, 3030 + i) for i, name in enumerate(NODE_NAMES)}
    for i, name in enumerate(("registry", "registry2")):
        made[name] = init_home(root, name, 3040 + i)
    return made


@dataclass
class LiveRegistry:
    """A registry served over TLS on 127.0.0.1, and how to reach it."""

    url: str
    records: RegistryRecords
    home: Home
    database_url: str

    def client(self, *, clock: Clock | None = None) -> RegistryClient:
        verify = registry_tls_context([self.home.ca_pem])
        return RegistryClient(self.url, verify=verify, timeout=10, clock=clock)


@asynccontextmanager
async def serve_registry(
    home: Home,
    database_url: str,
    options: RegistryOptions | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[LiveRegistry]:
    """Run a registry from ``home`` on ``database_url`` until the block exits."""
    records = RegistryRecords(database_url)
    await records.connect()
    # Exact reads by default (no page reuse), so tests see each write at once.
    chosen = options or RegistryOptions(list_cache_seconds=0)
    app = create_registry_app(records, home.identity, chosen, clock=clock)
    certs = home.root / "certs"
    tls = server_context(certs / "node.crt", certs / "node.key", client_cert=ClientCertMode.NONE)
    try:
        with running_server(app, ssl_context=tls, mtls=False) as server:
            yield LiveRegistry(server.base_url, records, home, database_url)
    finally:
        await records.close()


@pytest.fixture(params=BACKENDS)
def registry_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A registry database URL: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
async def registry(homes: dict[str, Home], tmp_path: Path) -> AsyncIterator[LiveRegistry]:
    """A fresh registry on SQLite."""
    async with serve_registry(homes["registry"], f"sqlite:///{tmp_path}/registry.db") as live:
        yield live


@pytest.fixture
async def node_stores(homes: dict[str, Home], tmp_path: Path) -> AsyncIterator[dict[str, Store]]:
    """A fresh, connected store per node (the node homes are shared; their stores are not)."""
    stores = {name: Store(f"sqlite:///{tmp_path}/{name}.db") for name in NODE_NAMES}
    for store in stores.values():
        await store.connect()
    try:
        yield stores
    finally:
        for store in stores.values():
            await store.close()


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, within: float = 15.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def closed_port() -> int:
    """A loopback port nothing listens on (bound by the OS, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
