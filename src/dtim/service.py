"""Composition root: the one place that wires settings, store, crypto and servers together."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from dtim import __version__
from dtim.api.health import health_router
from dtim.api.metrics import metrics_router
from dtim.config import NodeHome
from dtim.crypto.identity import create_identity, load_identity
from dtim.crypto.evidence import seal_evidence
from dtim.crypto.keyfiles import write_secret
from dtim.crypto.keyring import Keyring
from dtim.crypto.passwords import hash_password, new_password
from dtim.crypto.tls import issue_node_certificates
from dtim.errors import DTIMError
from dtim.model import Sighting, SystemClock, TailPosition
from dtim.store import Store

ADMIN_PASSWORD_FILE = "admin.argon2"

_tasks: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
    """Start a named background task and keep a reference until it finishes."""
    task = asyncio.create_task(coro, name=name)  # noqa: TID251  # the one sanctioned place
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


@dataclass(frozen=True)
class CreatedHome:
    """What ``dtim init`` reports."""

    node_id: str
    fingerprint: str
    admin_password: str


def initialise_home(home: NodeHome, *, host: str) -> CreatedHome:
    """Create the identity key pair, TLS material and admin password of a new home."""
    identity = create_identity(home.keys_dir, overwrite=True)
    issue_node_certificates(home.certs_dir, [host], now=SystemClock().now(), common_name=identity.node_id[:32])
    Keyring.load_or_create(home.keys_dir, now=SystemClock().now())
    password = new_password()
    write_secret(home.keys_dir / ADMIN_PASSWORD_FILE, hash_password(password).encode())
    home.encrypted_logs.mkdir(parents=True, exist_ok=True)
    return CreatedHome(node_id=identity.node_id, fingerprint=identity.fingerprint, admin_password=password)


def open_store(home: NodeHome) -> Store:
    """The node's store (not yet connected)."""
    return Store(home.database_url)


def node_identity(home: NodeHome) -> tuple[str, str]:
    """(node id, fingerprint) of the node at ``home``."""
    identity = load_identity(home.keys_dir)
    return identity.node_id, identity.fingerprint


async def _store_ready(store: Store) -> dict[str, str]:
    try:
        await store.last_seq()
    except DTIMError as exc:
        return {"store": str(exc)}
    return {}


def build_admin_app(store: Store) -> FastAPI:
    """The admin listener's application (health for now; admin API and dashboard mount here)."""
    app = FastAPI(title="DTIM admin API", version=__version__)
    app.include_router(health_router(lambda: _store_ready(store)))
    app.include_router(metrics_router(store))
    return app


async def run_node(home: NodeHome) -> None:
    """Run a node until SIGINT or SIGTERM: store, admin listener and background tasks."""
    load_identity(home.keys_dir)  # fail before listening if the identity is unusable
    store = open_store(home)
    await store.connect()
    admin = uvicorn.Server(
        uvicorn.Config(
            build_admin_app(store),
            host=home.settings.admin.listen_address,
            port=home.settings.admin.listen_port,
            log_level="warning",
            lifespan="off",
        )
    )
    try:
        await admin.serve()
    finally:
        await store.close()


class StoreSink:
    """Watchers' sink backed by the node store: evidence sealed, sightings and positions in one transaction.

    Evidence is encrypted with the node keyring, bound to the indicator id
    (``context=indicator id`` for :func:`dtim.crypto.evidence.open_evidence`).
    """

    def __init__(self, store: Store, keyring: Keyring) -> None:
        self._store = store
        self._keyring = keyring

    async def commit(self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]) -> None:
        """Seal each sighting's evidence and commit everything atomically."""
        sealed = [seal_evidence(self._keyring, s.evidence, context=s.indicator.id) for s in sightings]
        await self._store.record_sightings(sightings, sealed, positions)

    async def position(self, watcher: str, path: str) -> TailPosition | None:
        """The committed position of ``watcher`` on ``path``."""
        return await self._store.get_position(watcher, path)


# -- registry (issue 7): the registry process, and the node's registry task -------------------

REGISTRY_CA_DIR = "certs/registry-ca"
"""CA certificates (``*.crt``, ``*.pem``) trusted for registries beyond the system store:
a node's registry, or a registry's federation peers."""


def registry_ca_pems(home: NodeHome) -> list[str]:
    """The PEMs in the home's ``certs/registry-ca/`` (none when the directory is absent)."""
    directory = home.path(REGISTRY_CA_DIR)
    if not directory.is_dir():
        return []
    return [
        p.read_text(encoding="ascii")
        for p in sorted(directory.iterdir())
        if p.suffix in {".crt", ".pem"}
    ]


def start_registry_client(home: NodeHome, store: Store) -> asyncio.Task[Any] | None:
    """Spawn the node's registry task when ``network.registry_url`` is set (after store.connect()).

    With ``network.registry_opt_in`` the node registers and refreshes its entry;
    either way it reads the list and adds new nodes as pending peers.

    Raises:
        ConfigError: opted in without ``network.public_endpoint``.
    """
    from dtim.errors import ConfigError
    from dtim.registry.client import RegistryClient, registry_tls_context
    from dtim.registry.discovery import DiscoveryOptions, registry_loop

    network = home.settings.network
    if not network.registry_url:
        return None
    if network.registry_opt_in and not network.public_endpoint:
        raise ConfigError(
            "set the URL peers reach this node at to register at the registry",
            key="network.public_endpoint",
        )
    options = DiscoveryOptions(
        registry_url=network.registry_url,
        opt_in=network.registry_opt_in,
        endpoint=network.public_endpoint,
    )
    client = RegistryClient(
        network.registry_url,
        verify=registry_tls_context(registry_ca_pems(home)),
        timeout=network.request_timeout_seconds,
    )
    return spawn(
        registry_loop(options, identity=load_identity(home.keys_dir), store=store, client=client),
        name="registry",
    )


async def run_registry(
    home: NodeHome, *, port: int | None = None, database_url: str | None = None
) -> None:
    """Run the registry (``dtim registry run``) until SIGINT/SIGTERM: API, expiry, federation."""
    from dtim.crypto.tls import ClientCertMode, server_context
    from dtim.registry.client import registry_tls_context
    from dtim.registry.routes import RegistryOptions
    from dtim.registry.runtime import DEFAULT_DATABASE, RegistryRuntime

    settings = home.settings
    options = RegistryOptions(
        heartbeat_seconds=settings.registry.heartbeat_seconds,
        signature_window_seconds=settings.security.signature_window_seconds,
        federate_with=tuple(settings.registry.federate_with),
    )
    runtime = RegistryRuntime(
        database_url or f"sqlite:///{home.path(DEFAULT_DATABASE)}",
        load_identity(home.keys_dir),
        options,
        federation_tls=registry_tls_context(registry_ca_pems(home)),
    )
    tls = server_context(home.tls_cert, home.tls_key, client_cert=ClientCertMode.NONE)
    await runtime.start()
    tasks = [
        spawn(runtime.maintain(), name="registry-maintenance"),
        spawn(runtime.federate(), name="registry-federation"),
    ]
    server = uvicorn.Server(
        uvicorn.Config(
            runtime.app,
            host=settings.registry.listen_address,
            port=settings.registry.listen_port if port is None else port,
            ssl_context_factory=lambda _config, _default: tls,
            log_level="warning",
            lifespan="off",
        )
    )
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runtime.close()
