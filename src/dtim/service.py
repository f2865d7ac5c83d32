"""Composition root: the one place that wires settings, store, crypto and servers together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import signal
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from dtim import __version__
from dtim.api.auth import set_admin_password
from dtim.api.deadline import RequestDeadlineMixin
from dtim.api.health import health_router
from dtim.api.metrics import metrics_router
from dtim.api.mtls import TLSExtensionMixin
from dtim.api.peer import PeerApi, PublicIndicators, build_peer_app
from dtim.config import NodeHome
from dtim.crypto.auditlog import AuditLog
from dtim.crypto.evidence import open_evidence, seal_evidence
from dtim.crypto.identity import NodeIdentity, create_identity, load_identity
from dtim.crypto.keyring import Keyring
from dtim.crypto.nodekeys import NodeKeys
from dtim.crypto.passwords import new_password
from dtim.crypto.rotation import first_node_id
from dtim.crypto.signatures import MessageSigner, RequestVerifier
from dtim.crypto.tls import PeerTrust, issue_node_certificates
from dtim.errors import (
    ConfigError,
    CryptoError,
    DTIMError,
    GossipError,
    StoreError,
    ValidationError,
)
from dtim.gossip.corroboration import NewReportQuota
from dtim.gossip.dandelion import DandelionConfig, Router
from dtim.gossip.inbox import Inbox, subject_of
from dtim.gossip.issuers import IssuerCap
from dtim.gossip.nodeinfo import NodeInfo, fetch_node_info
from dtim.gossip.outbox import REPORTER_SECRET_LABEL, reporter_secret
from dtim.gossip.peers import (
    DefaultPeer,
    PeerControls,
    PeerDirectory,
    PeerSnapshot,
    add_peer,
    adopt_default_peer,
    peer_json,
    peer_listing,
    set_status,
)
from dtim.gossip.protocol import decode_item
from dtim.gossip.report import ItemId, Report, verify_tombstone
from dtim.gossip.reputation import Reputation
from dtim.gossip.responder import Responder
from dtim.gossip.rollout import (
    KeyFiles,
    KeyMaintenance,
    current_document,
    key_owner,
    rolled_over_from,
)
from dtim.gossip.sync import GossipLoop, RoundSettings
from dtim.gossip.transport import HttpTransport
from dtim.gossip.views import ItemIndex
from dtim.model import Clock, PeerId, PeerStatus, Sighting, SystemClock, TailPosition
from dtim.model.indicator import JsonValue
from dtim.privacy import PrivacyFilter
from dtim.store import Store, StoredSighting
from dtim.store.gossip import GossipStore

if TYPE_CHECKING:
    from datetime import datetime

    import httpx

    from dtim.config.settings import Settings
    from dtim.sensor.wire import WireBatch
    from dtim.taxii.runtime import NodeRuntime
    from dtim.watchers.enrichment import EnrichingSink
    from dtim.watchers.supervisor import WatcherConfig

_T = TypeVar("_T")
_LEARNED_HERE_LIMIT = 100_000
"""Sealed evidence a learner remembers as already learned (beyond it, it forgets them all)."""
_MISSING_LIMIT = 50_000  # ids asked for again; beyond, the lowest are given up
_LATE_QUERY = 500  # ids per query


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
    issue_node_certificates(
        home.certs_dir, [host], now=SystemClock().now(), common_name=identity.node_id[:32]
    )
    Keyring.load_or_create(home.keys_dir, now=SystemClock().now())
    password = new_password()
    set_admin_password(home.keys_dir, password)
    home.encrypted_logs.mkdir(parents=True, exist_ok=True)
    return CreatedHome(
        node_id=identity.node_id, fingerprint=identity.fingerprint, admin_password=password
    )


def open_store(home: NodeHome) -> Store:
    """The node's store (not yet connected)."""
    return Store(home.database_url)


def node_identity(home: NodeHome) -> tuple[str, str]:
    """(node id, fingerprint) of the node at ``home``."""
    identity = load_identity(home.keys_dir)
    return identity.node_id, identity.fingerprint


async def store_readiness(store: Store) -> dict[str, str]:
    """What ``/readyz`` reports of the store: a failing read, or the last write's failure
    while writes fail (a full disk still reads fine)."""
    try:
        await store.last_seq()
    except DTIMError as exc:
        return {"store": str(exc)}
    if store.write_failure is not None:
        return {"store": f"writes failing: {store.write_failure}"}
    return {}


TAXII_ACCOUNTS_FILE = "taxii-users.json"
"""TAXII consumer accounts, in the home's ``config/`` (``dtim taxii users add``)."""


def build_admin_app(
    home: NodeHome,
    store: Store,
    gossip: GossipRuntime | None = None,
    *,
    routers: Sequence[APIRouter] = (),
    keyring: Keyring | None = None,
) -> FastAPI:
    """The admin listener's app: dashboard and admin API, health, metrics, exports and the
    blocklist, remote sensors' submissions, and TAXII at ``/taxii2``.

    With ``gossip`` every path shares the running node's privacy filter, which knows
    the local names its evidence taught it (:class:`EvidenceLearner`); without it, a
    fresh filter from ``[privacy]`` that has learned nothing yet.

    Raises:
        CryptoError: the identity or keyring is unusable.
        ConfigError: a bad privacy or aging setting, or an unreadable TAXII accounts file.
    """
    from dtim.api.exports import exports_router
    from dtim.api.sensors import sensor_router
    from dtim.taxii.wiring import node_runtime, node_taxii_server
    from dtim.web.node import node_admin_app, privacy_filter_for

    accounts = home.config_dir / TAXII_ACCOUNTS_FILE
    shared = gossip.privacy if gossip is not None else None
    privacy = shared or privacy_filter_for(home)
    exporter = node_runtime(store, privacy, accounts, SystemClock())
    app = node_admin_app(
        home,
        store,
        routers=[
            health_router(lambda: store_readiness(store)),
            metrics_router(store),
            exports_router(
                exporter, misp_feed_dir=home.data_dir / "misp-feed", store_version=store.last_seq
            ),
            sensor_router(
                store,
                StoreSink(
                    store,
                    keyring or _keyring(home),
                    privacy,
                    gossip.learner if gossip is not None else None,
                ),
            ),
            *routers,
        ],
        peer_control=peer_control(home, store, gossip.directory if gossip else None),
        gossip_status=gossip.loop.status if gossip else None,
        tls=home.settings.admin.tls,
        spawn=lambda work, name: spawn(work, name=name),
    )
    taxii = node_taxii_server(store, privacy, accounts, SystemClock())
    app.mount("/taxii2", taxii.app())
    return app


def _keyring(home: NodeHome) -> Keyring:
    return Keyring.load_or_create(home.keys_dir, now=SystemClock().now())


@contextlib.asynccontextmanager
async def open_taxii_runtime(home: NodeHome) -> AsyncIterator[NodeRuntime]:
    """What ``dtim taxii`` and ``dtim indicators export|import`` run on: the home's store,
    privacy filter and TAXII accounts."""
    from dtim.taxii.wiring import node_runtime
    from dtim.web.node import privacy_filter_for

    async with open_store(home) as store:
        privacy = privacy_filter_for(home)
        await EvidenceLearner(store, _keyring(home), privacy).catch_up()
        yield node_runtime(store, privacy, home.config_dir / TAXII_ACCOUNTS_FILE, SystemClock())


async def run_node(home: NodeHome) -> None:
    """Run a node until SIGINT or SIGTERM.

    Starts: the peer API on ``network.listen_address:listen_port`` (HTTPS,
    mutual TLS trusting exactly the approved peers' pinned CAs, signed
    requests), the admin listener, the peers refresher (approve/revoke apply
    within a second), the adoption of ``network.default_peers``, and, while
    this process leads (:func:`lead_when_elected`), the gossip rounds, the
    aging sweeper and the watchers. Any of them failing stops the node.
    """
    _log_to_stderr(home)
    identity = load_identity(home.keys_dir)  # fail before listening if the identity is unusable
    clock = SystemClock()
    store = open_store(home)
    await store.connect()
    keyring = Keyring.load_or_create(home.keys_dir, now=clock.now())
    audit = AuditLog(home.encrypted_logs, keyring, clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    servers: list[uvicorn.Server] = []
    tasks: list[asyncio.Task[Any]] = []
    gossip: GossipRuntime | None = None
    try:
        gossip = await build_gossip(home, store, identity, audit, clock, keyring=keyring)
        admin_trust = admin_tls(home)
        gossip.maintenance = key_maintenance(home, store, gossip, keyring, clock, admin_trust)
        await gossip.maintenance.prepare()
        servers = [
            _NodeServer(
                uvicorn.Config(
                    build_admin_app(home, store, gossip, keyring=keyring),
                    host=home.settings.admin.listen_address,
                    port=home.settings.admin.listen_port,
                    ssl_context_factory=(
                        None
                        if admin_trust is None
                        else lambda _config, _default: admin_trust.listener_context()
                    ),
                    log_level="warning",
                    log_config=None,  # the node configured logging (text or JSON)
                    lifespan="off",
                    # The lock-out counts failures per client address. uvicorn would take
                    # it from X-Forwarded-For of any client on 127.0.0.1, that is of every
                    # client of this loopback listener: each made-up address would get
                    # its own five guesses.
                    proxy_headers=False,
                )
            ),
            _NodeServer(gossip.server_config(home)),
        ]
        tasks = [
            spawn(servers[0].serve(), name="admin-api"),
            spawn(servers[1].serve(), name="peer-api"),
        ]
        tasks += [spawn(work, name=name) for name, work in gossip.background()]
        registry_task = start_registry_client(home, store, gossip.keys)
        if registry_task is not None:
            tasks.append(registry_task)
        tasks.append(spawn(lead_when_elected(home, store, gossip, keyring), name="leadership"))
        _audit(audit, {"event": "node_started", "node": identity.node_id})
        network, admin = home.settings.network, home.settings.admin
        logging.getLogger("dtim").info(
            "node %s: peer API on https://%s:%d (mTLS), admin on %s://%s:%d, "
            "gossip every %.0f s with %d peer(s) per round",
            identity.node_id[:16],
            network.listen_address,
            network.listen_port,
            "https" if admin.tls else "http",
            admin.listen_address,
            admin.listen_port,
            network.gossip_interval_seconds,
            network.peers_per_round,
        )
        # Everything built so far lives as long as the process: keep it out of the collector's
        # scans (shorter pauses, and a quicker exit).
        gc.freeze()
        await _until_stopped(stop, tasks)
    finally:
        for server in servers:
            server.should_exit = True
        serving = tasks[:2]
        if serving:
            await asyncio.wait(serving, timeout=5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if gossip is not None:
            await gossip.close()
        _audit(audit, {"event": "node_stopped", "node": identity.node_id})
        audit.close()
        await store.close()


class StoreSink:
    """Watchers' sink on the node store: sealed evidence, sightings and positions in one commit.

    Evidence is encrypted with the node keyring, bound to the indicator id
    (``context=indicator id`` for :func:`dtim.crypto.evidence.open_evidence`).
    With the node's ``privacy`` filter, the filter learns each sighting's host and
    user names and paths before the sighting is committed, so nothing shares an
    indicator before the filter knows the names its evidence holds.
    """

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        privacy: PrivacyFilter | None = None,
        learner: EvidenceLearner | None = None,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._privacy = privacy
        self._learner = learner

    def _learn(self, found: Sequence[Sighting]) -> None:
        if self._privacy is not None:
            for sighting in found:
                self._privacy.learn(sighting.evidence)

    async def commit(
        self, sightings: Sequence[Sighting], positions: Sequence[TailPosition]
    ) -> None:
        """Seal each sighting's evidence and commit everything atomically."""
        self._learn(sightings)
        sealed = [
            seal_evidence(self._keyring, s.evidence, context=s.indicator.id) for s in sightings
        ]
        await self._committing(sealed, self._store.record_sightings(sightings, sealed, positions))

    async def _committing(self, sealed: Sequence[bytes], commit: Awaitable[_T]) -> _T:
        # The process's learner need not open again what this sink taught the filter.
        if self._learner is None:
            return await commit
        self._learner.learned_here(sealed)
        try:
            return await commit
        except BaseException:
            self._learner.not_stored(sealed)
            raise

    async def position(self, watcher: str, path: str) -> TailPosition | None:
        """The committed position of ``watcher`` on ``path``."""
        return await self._store.get_position(watcher, path)

    async def commit_batches(
        self, sensor_id: str, batches: Sequence[WireBatch], now: datetime
    ) -> list[bool]:
        """Commit remote sensors' batches, evidence sealed, each batch at most once.

        Returns:
            Per batch, True when it was new, False when the node had it already.
        """
        from dtim.store.sensors import SensorBatch, SensorStore

        keyring = self._keyring
        for batch in batches:
            self._learn(batch.sightings)
        sealed = [
            SensorBatch(
                b.batch_id,
                b.sightings,
                [seal_evidence(keyring, s.evidence, context=s.indicator.id) for s in b.sightings],
            )
            for b in batches
        ]
        blobs = [blob for batch in sealed for blob in batch.sealed if blob is not None]
        stored = await self._committing(
            blobs, SensorStore(self._store).record_batches(sensor_id, sealed, now)
        )
        if self._learner is not None:  # batches the node had already: their blobs never land
            old = [batch for batch, new in zip(sealed, stored, strict=True) if not new]
            self._learner.not_stored(
                [blob for batch in old for blob in batch.sealed if blob is not None]
            )
        return stored


WATCHER_PATH_KEYS = {
    "ufw": "ufw_log_path",
    "fail2ban": "fail2ban_log_path",
    "suricata": "suricata_log_path",
    "zeek": "zeek_log_dir",
    "clamav": "clamav_scan_dir",
    "nginx_access": "nginx_access_log",
    "nginx_error": "nginx_error_log",
    "apache_access": "apache_access_log",
    "apache_error": "apache_error_log",
}
"""Built-in watcher name -> the ``[watchers]`` key holding its path."""


def watcher_config(settings: Settings) -> WatcherConfig:
    """The watchers' part of the settings, as the plain values the watchers package takes."""
    from dtim.watchers.supervisor import WatcherConfig

    section = settings.watchers
    return WatcherConfig(
        paths={name: getattr(section, key) for name, key in WATCHER_PATH_KEYS.items()},
        rules=section.rules,
        start_at=section.start_at,
        own_networks=tuple(settings.privacy.own_networks),
        own_domains=tuple(settings.privacy.own_domains),
    )


def start_watchers(
    home: NodeHome,
    store: Store,
    keyring: Keyring,
    stop: asyncio.Event,
    privacy: PrivacyFilter | None = None,
    learner: EvidenceLearner | None = None,
) -> list[asyncio.Task[Any]]:
    """Spawn the node's watchers (those whose ``[watchers]`` path is set) and, with an API key,
    the VirusTotal enrichment worker. None when no watcher is on.

    Raises:
        ConfigError: a watcher's table or ``privacy.own_networks`` is invalid.
    """
    import httpx

    from dtim.watchers.enrichment import EnrichingSink, StateVtCache
    from dtim.watchers.supervisor import WatcherSupervisor
    from dtim.watchers.virustotal import make_enricher

    settings = home.settings
    sink: StoreSink | EnrichingSink = StoreSink(store, keyring, privacy, learner)
    tasks: list[asyncio.Task[Any]] = []
    api_key = settings.watchers.virustotal_api_key
    if api_key:
        client = httpx.AsyncClient(timeout=settings.network.request_timeout_seconds)
        enricher = make_enricher(client, api_key, cache=StateVtCache(store))
        if enricher is not None:
            sink = EnrichingSink(sink, enricher, store)
            tasks.append(spawn(_enrich(sink, client, stop), name="virustotal"))
    supervisor = WatcherSupervisor(watcher_config(settings), sink, store)
    if not supervisor.runners:
        return tasks
    return [*tasks, spawn(supervisor.run(stop), name="watchers")]


async def _enrich(sink: EnrichingSink, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
    try:
        await sink.run(stop)
    finally:
        await client.aclose()


# -- scale-out: remote sensors reach the admin listener over HTTPS; one leader per database ---


def admin_tls(home: NodeHome) -> PeerTrust | None:
    """The admin listener's TLS when ``admin.tls`` is on: the node certificate, no client
    certificate asked, reloaded in place after a TLS rotation like the peer listener's.

    Raises:
        CryptoError: the node certificate or key is unusable.
    """
    if not home.settings.admin.tls:
        return None
    from dtim.crypto.tls import ClientCertMode

    trust = PeerTrust(home.tls_cert, home.tls_key, client_cert=ClientCertMode.NONE)
    trust.listener_context()  # fail before listening if the certificate is unusable
    return trust


SENSOR_BATCH_SWEEP_SECONDS = 3600.0
"""How often the leader forgets sensor batch ids past their memory."""


async def forget_sensor_batches(store: Store, clock: Clock) -> None:
    """Every hour, forget the ids of sensor batches committed more than 30 days ago.

    The node refuses batches that old (``dtim.api.sensors.refuse_stale``), so their ids
    are no longer needed. A failing store is logged and tried again at the next sweep.
    """
    from dtim.store.sensors import BATCH_MEMORY, SensorStore

    log = logging.getLogger("dtim.sensors")
    sensors = SensorStore(store)
    while True:
        try:
            forgotten = await sensors.forget_batches(clock.now() - BATCH_MEMORY)
        except StoreError as exc:
            log.warning("cannot forget old sensor batch ids (%s); trying again later", exc)
        else:
            if forgotten:
                log.info(
                    "forgot %d sensor batch id(s) older than %d days", forgotten, BATCH_MEMORY.days
                )
        await asyncio.sleep(SENSOR_BATCH_SWEEP_SECONDS)


LEADER_STATE_KEY = "node.leader"
"""Store state naming the process that leads (``host:pid`` and since when)."""


def leader_interval(home: NodeHome) -> float:
    """Seconds between leadership tries and checks: a third of the gossip interval (at most 5),
    so a dead leader is replaced within one gossip interval."""
    return max(0.2, min(5.0, home.settings.network.gossip_interval_seconds / 3))


async def lead_when_elected(
    home: NodeHome, store: Store, gossip: GossipRuntime, keyring: Keyring
) -> None:
    """Run gossip rounds, the aging sweeper and the watchers while this process is the leader.

    On PostgreSQL the leader holds an advisory lock keyed by the node id
    (:mod:`dtim.store.leader`); on SQLite the process always leads.

    Raises:
        ConfigError: a watcher setting is invalid (when the lead is taken).
    """
    import os
    import socket

    from dtim.model.clock import iso
    from dtim.store.leader import AdvisoryLock, LeaderLock, Leadership, SoleProcessLock, lock_key

    interval = leader_interval(home)
    lock: LeaderLock = SoleProcessLock()
    if store.dialect == "postgresql":
        # The id before any key rollover: processes started before and after one share the lock.
        node_id = first_node_id(home.keys_dir)
        lock = AdvisoryLock(home.database_url, lock_key(node_id), timeout=max(1.0, interval))
    process = f"{socket.gethostname()}:{os.getpid()}"

    async def announce(leading: bool) -> None:
        if leading:
            since = iso(SystemClock().now())
            await store.set_state(LEADER_STATE_KEY, {"process": process, "since": since})

    async def lead() -> None:
        stop_watchers = asyncio.Event()
        work = [spawn(job, name=name) for name, job in gossip.leader_work()]
        work += start_watchers(home, store, keyring, stop_watchers, gossip.privacy, gossip.learner)
        # One sender per node: several processes would each deliver every change.
        work += start_integrations(home, store, SystemClock(), gossip.privacy)
        work.append(spawn(forget_sensor_batches(store, SystemClock()), name="sensor-batches"))
        try:
            await asyncio.gather(*work)
        finally:
            stop_watchers.set()
            for task in work:
                task.cancel()
            await asyncio.gather(*work, return_exceptions=True)
            await gossip.loop.close()  # sessions in flight end with the lead

    leadership = Leadership(lock, interval=interval, announce=announce)
    await leadership.run(lead, lambda job, name: spawn(job, name=name))


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


def start_registry_client(
    home: NodeHome, store: Store, keys: NodeKeys | None = None
) -> asyncio.Task[Any] | None:
    """Spawn the node's registry task when ``network.registry_url`` is set (after store.connect()).

    With ``network.registry_opt_in`` the node registers and refreshes its entry;
    either way it reads the list and adds new nodes as pending peers. With the running
    node's ``keys`` it follows identity rollovers (else it uses the key on disk).

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
        registry_loop(
            options, identity=keys or load_identity(home.keys_dir), store=store, client=client
        ),
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

    _log_to_stderr(home)
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
    server = _RegistryServer(
        uvicorn.Config(
            runtime.app,
            host=settings.registry.listen_address,
            port=settings.registry.listen_port if port is None else port,
            ssl_context_factory=lambda _config, _default: tls,
            log_level="warning",
            log_config=None,  # configured by _log_to_stderr (text or JSON)
            lifespan="off",
        )
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.stop)
    try:
        await server.serve()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runtime.close()


class _RegistryServer(uvicorn.Server):
    """uvicorn without its own signal handling: it re-raises the signal after shutting down,
    which would end the process before the database is closed; run_registry stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave SIGINT/SIGTERM to :func:`run_registry`."""
        yield

    def stop(self) -> None:
        """Finish the requests in flight, then return from ``serve``."""
        self.should_exit = True


# -- gossip (issue 6): peer API over mTLS, peers, rounds, aging sweeper ----------------------


class _PeerProtocol(RequestDeadlineMixin, TLSExtensionMixin, H11Protocol):
    """uvicorn's h11 protocol with the ASGI TLS extension (the client certificate in the scope)
    and a deadline for each request to arrive (slow clients lose the connection)."""


class _NodeServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to :func:`run_node`, which stops every server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Do not install signal handlers (uvicorn's would stop only one of the servers)."""
        yield


async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[Any]]) -> None:
    """Return on SIGINT/SIGTERM; raise the error of the first task that fails (tasks may end)."""
    waiter = spawn(stop.wait(), name="stop-signal")
    running = {waiter, *tasks}
    try:
        while not stop.is_set():
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiter and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]  # checked not None just above
    finally:
        waiter.cancel()


def _log_to_stderr(home: NodeHome) -> None:
    """Log to stderr as ``[logging]`` says, unless the embedding process set up logging."""
    from dtim.logformat import configure_logging

    if not logging.getLogger().handlers:
        configure_logging(home.settings.logging.format, home.settings.logging.level)


def start_integrations(
    home: NodeHome, store: Store, clock: Clock, privacy: PrivacyFilter | None = None
) -> list[asyncio.Task[Any]]:
    """Spawn the ``[integrations]`` feed (webhooks, CEF over syslog); none when none is set.

    ``privacy`` is the running node's filter (a fresh one from ``[privacy]`` when None).

    Raises:
        ConfigError: a webhook entry, its secret or the syslog address is wrong.
    """
    import os

    from dtim.integrations.runtime import build_integrations
    from dtim.web.node import decay_model_for, privacy_filter_for

    wired = build_integrations(
        home.settings.integrations,
        store,
        privacy or privacy_filter_for(home),
        decay_model_for(home),
        clock,
        environ=os.environ.get,
    )
    return [] if wired is None else [spawn(wired.run(), name="integrations")]


def _audit(audit: AuditLog, event: dict[str, JsonValue]) -> None:
    try:
        audit.append(event)
    except DTIMError as exc:
        logging.getLogger("dtim").warning("audit log write failed: %s", exc)


@dataclass
class GossipRuntime:
    """The gossip half of a running node, built by :func:`build_gossip`."""

    loop: GossipLoop
    directory: PeerDirectory
    transport: HttpTransport
    trust: PeerTrust
    app: ASGIApp
    defaults: tuple[DefaultPeer, ...]
    items: GossipStore
    audit: AuditLog
    api: PeerApi
    keys: NodeKeys | None = None
    verifier: RequestVerifier | None = None
    maintenance: KeyMaintenance | None = None
    """Key rotation and rollover delivery (:func:`key_maintenance`); run_node sets it."""
    privacy: PrivacyFilter | None = None
    """The node's privacy filter: every outgoing path of the process shares it."""
    learner: EvidenceLearner | None = None
    """Teaches ``privacy`` the local names in stored evidence (other processes' too)."""

    def server_config(self, home: NodeHome) -> uvicorn.Config:
        """uvicorn settings of the peer API: HTTPS with the runtime mTLS trust set."""
        context = self.trust.listener_context()
        return uvicorn.Config(
            self.app,
            host=home.settings.network.listen_address,
            port=home.settings.network.listen_port,
            http=_PeerProtocol,
            ssl_context_factory=lambda _config, _default: context,
            log_level="warning",
            log_config=None,  # the node configured logging; uvicorn's loggers propagate to it
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_keep_alive=30,
            # Public paths are rate limited per client address. uvicorn would take it
            # from X-Forwarded-For of any client on 127.0.0.1, so a local process could
            # give itself a bucket per made-up address; and no proxy can stand in front
            # of a listener whose peers present their own certificates.
            proxy_headers=False,
        )

    def background(self) -> list[tuple[str, Coroutine[Any, Any, Any]]]:
        """The gossip tasks every node process runs, by name (the leader's: :meth:`leader_work`)."""
        work = [
            ("peers-refresh", self.directory.run()),
            ("default-peers", self.adopt_defaults()),
        ]
        if self.maintenance is not None:
            work.append(("key-files", self.maintenance.follow()))
        if self.learner is not None:
            work.append(("evidence-learner", self.learner.run()))
        return work

    def leader_work(self) -> list[tuple[str, Coroutine[Any, Any, Any]]]:
        """The gossip tasks only the leader process runs: rounds and the aging sweeper."""
        work = [
            ("gossip-rounds", self.loop.run()),
            ("aging-sweeper", self.loop.sweep_forever()),
        ]
        if self.maintenance is not None:
            work.append(("key-rotation", self.maintenance.run()))
        return work

    async def adopt_defaults(self) -> None:
        """Bring ``network.default_peers`` into the store, retrying unreachable ones later."""
        log = logging.getLogger("dtim.gossip.peers")
        waiting = list(self.defaults)
        delay = 1.0
        while waiting:
            known = {p.endpoint.rstrip("/"): p for p in self.directory.snapshot.peers.values()}
            for entry in list(waiting):
                peer = known.get(entry.endpoint)
                if (
                    peer is not None
                    and self.directory.pin(peer.id)
                    and (
                        entry.public_key is None
                        or peer.public_key == entry.public_key
                        or rolled_over_from(peer.id, entry.public_key)
                    )
                ):
                    waiting.remove(entry)
                    continue
                try:
                    await adopt_default_peer(
                        self.items.store,
                        self.items,
                        entry,
                        fetch=_fetcher(self.loop.settings.request_timeout),
                        now=self.loop.clock.now(),
                        audit=self.audit,
                    )
                except GossipError as exc:
                    log.info("default peer %s not adopted yet: %s", entry.endpoint, exc)
                    continue
                waiting.remove(entry)
            await self.directory.refresh(force=True)
            if waiting:
                await asyncio.sleep(delay)
                delay = min(60.0, delay * 2)

    async def close(self) -> None:
        """Stop sessions and close connections to peers."""
        await self.loop.close()
        await self.transport.close()


def _fetcher(seconds: float) -> Callable[[str], Awaitable[NodeInfo]]:
    async def fetch(url: str) -> NodeInfo:
        return await fetch_node_info(url, seconds=seconds)

    return fetch


def _approved_issuer(keys: NodeKeys, directory: PeerDirectory) -> Callable[[str], bool]:
    """True for a tombstone issuer the node follows without the daily cap: itself or an
    approved peer (a peer that rolled its key over issues under its new key's id)."""

    def approved(issuer: str) -> bool:
        if keys.public_key_of(issuer) is not None:  # ours, under any id of the rollover chain
            return True
        owner = keys.owner(issuer) or ""
        return directory.approved(issuer) is not None or directory.approved(owner) is not None

    return approved


class EvidenceLearner:
    """Teaches the node's privacy filter the host and user names and paths of local evidence.

    The filter strips a name from everything that leaves only once it knows the
    name. Evidence committed by this process is learned before its commit
    (:class:`StoreSink`); :meth:`catch_up` reads what is stored, once at start
    and then every ``every`` seconds for evidence other processes committed
    (remote sensors at another node process, the leader's watchers).
    """

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        privacy: PrivacyFilter,
        *,
        batch: int = 1000,
        late_commit_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._privacy = privacy
        self._batch = batch
        self.cursor = 0
        """Row id of the last sighting read."""
        self._here: set[bytes] = set()
        # Ids below the cursor not seen yet, and when first missed. On PostgreSQL a
        # sighting's id is taken when it is inserted, so another process's transaction
        # may commit a lower id after a higher one was read: each catch-up asks for these
        # ids again, for ``late_commit_seconds`` (a deleted or rolled-back id never comes).
        self._missing: dict[int, float] = {}
        self._late = late_commit_seconds
        self._monotonic = monotonic

    def learned_here(self, sealed: Iterable[bytes]) -> None:
        """Sealed evidence this process's sink taught the filter before committing it: the
        catch-up passes over it instead of opening it again."""
        if len(self._here) > _LEARNED_HERE_LIMIT:
            self._here.clear()  # only a saving: what is forgotten is opened and learned again
        self._here.update(sealed)

    def not_stored(self, sealed: Iterable[bytes]) -> None:
        """Forget evidence announced by :meth:`learned_here` whose commit did not happen."""
        self._here.difference_update(sealed)

    @property
    def waiting(self) -> int:
        """Sealed evidence announced by :meth:`learned_here` that the catch-up has not met."""
        return len(self._here)

    @property
    def missing(self) -> int:
        """Ids below the cursor still asked for (sightings perhaps not committed yet)."""
        return len(self._missing)

    async def catch_up(self) -> int:
        """Learn every stored sighting's evidence not learned yet; returns how many."""
        learned = await self._late_commits()
        now = self._monotonic()
        while True:
            rows = await self._store.sightings_after(self.cursor, self._batch)
            for row in rows:
                # Before the first read, the ids below the oldest row are purged history:
                # only the few just below it can be a commit still under way.
                first = self.cursor + 1 if self.cursor else row.id - _LATE_QUERY
                self._note_missing(max(1, first), row.id, now)
                self.cursor = row.id
                learned += self._learn(row)
            if len(rows) < self._batch:
                return learned

    async def _late_commits(self) -> int:
        now = self._monotonic()
        expired = [row_id for row_id, since in self._missing.items() if now - since > self._late]
        for row_id in expired:
            del self._missing[row_id]
        learned = 0
        wanted = sorted(self._missing)
        for start in range(0, len(wanted), _LATE_QUERY):
            for row in await self._store.sightings_by_id(wanted[start : start + _LATE_QUERY]):
                del self._missing[row.id]
                learned += self._learn(row)
        return learned

    def _note_missing(self, first: int, last: int, now: float) -> None:
        """Ids ``first`` up to ``last`` (excluded) were not there when ``last`` was read."""
        room = _MISSING_LIMIT - len(self._missing)
        for row_id in range(max(first, last - room), last):
            self._missing[row_id] = now

    def _learn(self, row: StoredSighting) -> int:
        if row.sealed_evidence is None:
            return 0
        if row.sealed_evidence in self._here:
            self._here.discard(row.sealed_evidence)
            return 0
        try:
            evidence = open_evidence(self._keyring, row.sealed_evidence, context=row.indicator_id)
        except CryptoError as exc:
            logging.getLogger("dtim").warning(
                "cannot open the evidence of sighting %d: %s", row.id, exc
            )
            return 0
        self._privacy.learn(evidence)
        return 1

    async def run(self, every: float = 5.0) -> None:
        """Catch up every ``every`` seconds until cancelled (store errors are retried)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.catch_up()
            except DTIMError as exc:
                logging.getLogger("dtim").warning("evidence learner: %s; retrying", exc)


async def build_gossip(
    home: NodeHome,
    store: Store,
    identity: NodeIdentity,
    audit: AuditLog,
    clock: Clock,
    *,
    origin_hiding: bool = True,
    keyring: Keyring | None = None,
) -> GossipRuntime:
    """Wire the gossip half of a node from its settings (store connected; nothing listens yet).

    The node's privacy filter learns the local names in every stored sighting's
    evidence before anything is built on it.

    Args:
        origin_hiding: new own reports walk the Dandelion++ stem first (tests may turn it off).
        keyring: the node keyring (opens stored evidence; read from the home when None).

    Raises:
        ConfigError: a bad ``network.default_peers`` entry, privacy or aging setting.
        CryptoError: the node certificate, key or CA is unusable.
    """
    from dtim.web.node import decay_model_for, privacy_filter_for

    network = home.settings.network
    try:
        defaults = tuple(DefaultPeer.parse(entry) for entry in network.default_peers)
    except ValidationError as exc:
        raise ConfigError(exc.reason, key="network.default_peers") from None
    privacy = privacy_filter_for(home)
    learner = EvidenceLearner(store, keyring or _keyring(home), privacy)
    await learner.catch_up()
    model = decay_model_for(home)
    items = GossipStore(store)
    trust = PeerTrust(home.tls_cert, home.tls_key)
    directory = PeerDirectory(store, items, trust=trust.set_peers)
    keys = NodeKeys(identity, owner=key_owner(directory))
    index = ItemIndex(
        privacy,
        model,
        secret=reporter_secret(identity.sign(REPORTER_SECRET_LABEL)),
        verify=verify_tombstone,
        issuers=IssuerCap(
            network.max_verdicts_per_unapproved_issuer, _approved_issuer(keys, directory)
        ),
    )
    reputation = Reputation(clock)
    transport = HttpTransport(
        keys,
        home.tls_cert,
        home.tls_key,
        pins=directory.pin,
        timeout=network.request_timeout_seconds,
        clock=clock,
    )
    rng = random.SystemRandom()

    async def peers_changed(old: PeerSnapshot, new: PeerSnapshot) -> None:
        before = {p.id for p in old.approved()}
        now_approved = {p.id: p for p in new.approved()}
        for peer_id in before - set(now_approved):
            reputation.remove(PeerId(peer_id))
            await transport.forget(peer_id)
        for cleared, when in new.cleared.items():
            if old.cleared.get(cleared) != when and cleared in now_approved and cleared in before:
                reputation.clear(PeerId(cleared))  # a person re-approved it: lift the quarantine
        for peer_id, peer in now_approved.items():
            if peer_id not in before:
                reputation.approve(PeerId(peer_id), issuer=new.pins.get(peer_id))
            if old.pins.get(peer_id) != new.pins.get(peer_id) or (
                old.peers.get(peer_id) and old.peers[peer_id].endpoint != peer.endpoint
            ):
                await transport.forget(peer_id)

    directory.on_change(peers_changed)
    await directory.refresh(force=True)
    await _load_items(index, items, clock)
    inbox = Inbox(
        index,
        store,
        items,
        node_id=identity.node_id,
        quota=NewReportQuota(network.max_new_reports_per_peer),
        clock=clock,
        reputation=reputation,
        audit=audit,
    )
    loop = GossipLoop(
        index=index,
        inbox=inbox,
        directory=directory,
        transport=transport,
        store=store,
        items=items,
        settings=RoundSettings(
            network.gossip_interval_seconds,
            network.peers_per_round,
            network.request_timeout_seconds,
        ),
        clock=clock,
        spawn=lambda work, name: spawn(work, name=name),
        audit=audit,
        reputation=reputation,
        router=Router(DandelionConfig(interval_seconds=network.gossip_interval_seconds), clock, rng)
        if origin_hiding
        else None,
        rng=rng,
        traffic=transport.traffic,
    )
    endpoint = network.public_endpoint or f"https://{network.listen_address}:{network.listen_port}"
    document = current_document(
        keys,
        endpoint=endpoint,
        ca_pem=home.tls_ca.read_text(encoding="ascii"),
        software=f"dtim/{__version__}",
    )
    api = PeerApi(
        document=document,
        node=loop,
        responder=Responder(index, clock=clock),
        directory=directory,
        public=PublicIndicators(items, privacy, model, clock),
        audit=audit,
        readiness=lambda: store_readiness(store),
        quarantined=lambda peer_id: PeerId(peer_id) in reputation.quarantined(),
    )
    verifier = RequestVerifier(
        identity.node_id,
        directory,
        window_seconds=home.settings.security.signature_window_seconds,
        clock=clock,
    )
    app = build_peer_app(
        api,
        trust=trust,
        verifier=verifier,
        signer=MessageSigner(keys, clock=clock),
        max_body_bytes=network.max_body_bytes,
        audit=audit,
    )
    return GossipRuntime(
        loop,
        directory,
        transport,
        trust,
        app,
        defaults,
        items,
        audit,
        api,
        keys,
        verifier,
        privacy=privacy,
        learner=learner,
    )


def key_maintenance(
    home: NodeHome,
    store: Store,
    gossip: GossipRuntime,
    keyring: Keyring,
    clock: Clock,
    admin_trust: PeerTrust | None = None,
) -> KeyMaintenance:
    """Key rotation on ``security.key_rotation_days`` and rollover delivery for a running node.

    ``admin_trust``: the admin listener's TLS, reloaded with the peer listener's after a
    TLS rotation (None when the admin API speaks plain HTTP).
    """
    if gossip.keys is None or gossip.verifier is None:
        raise ConfigError("the gossip runtime has no key set", key="security")
    return KeyMaintenance(
        KeyFiles(home.keys_dir, home.certs_dir),
        keys=gossip.keys,
        store=store,
        directory=gossip.directory,
        transport=gossip.transport,
        addressees=(gossip.verifier, gossip.loop.inbox),
        listeners=(gossip.trust, *([] if admin_trust is None else [admin_trust])),
        keyring=keyring,
        audit=gossip.audit,
        clock=clock,
        rotation_days=home.settings.security.key_rotation_days,
    )


async def _load_items(index: ItemIndex, items: GossipStore, clock: Clock) -> None:
    log = logging.getLogger("dtim.gossip")
    skipped = 0
    loaded = await items.load_items(int(clock.now().timestamp()))
    # In arrival order: the daily cap on unapproved issuers' tombstones is replayed.
    for stored in sorted(loaded, key=lambda row: row.received_at):
        try:
            item = decode_item(orjson.loads(stored.body))
            index.add_received(
                ItemId(stored.item_id),
                item,
                relay=stored.relay,
                subject=subject_of(item) if isinstance(item, Report) else None,
                at=stored.received_at,
            )
        except (DTIMError, orjson.JSONDecodeError):
            skipped += 1
    if skipped:
        log.warning("skipped %d stored gossip item(s) that no longer check out", skipped)


def peer_control(
    home: NodeHome, store: Store, directory: PeerDirectory | None = None
) -> PeerControls:
    """The admin API's peer actions (approve pins the CA; a running node applies them at once)."""
    return PeerControls(
        store,
        GossipStore(store),
        fetch=_fetcher(home.settings.network.request_timeout_seconds),
        directory=directory,
    )


# -- peers CLI (issue 6): ``dtim peers list|add|approve|reject|revoke`` -------------------------


async def peers_command(home: NodeHome, action: str, target: str | None = None) -> JsonValue:
    """Run one ``dtim peers`` action against the home's store; returns its JSON result.

    Args:
        action: ``list``, ``add`` (target: URL), ``approve``, ``reject`` or ``revoke`` (target: id).

    Raises:
        ValidationError: unknown peer or action.
        GossipError: ``add``/``approve`` could not reach or confirm the peer.
    """
    clock = SystemClock()
    timeout = home.settings.network.request_timeout_seconds
    async with open_store(home) as store:
        items = GossipStore(store)
        if action == "list":
            return await peer_listing(store, items)
        audit = AuditLog(
            home.encrypted_logs, Keyring.load_or_create(home.keys_dir, now=clock.now()), clock
        )
        try:
            if action == "add":
                if not target:
                    raise ValidationError("url", "peers add needs the peer's URL")
                info = await fetch_node_info(target, seconds=timeout)
                peer = await add_peer(
                    store, items, info, endpoint=target, now=clock.now(), audit=audit
                )
                return {
                    **peer_json(peer, await items.pinned_cas()),
                    "software": info.software,
                    "ca_fingerprint": info.ca_fingerprint,
                }
            status = {
                "approve": PeerStatus.APPROVED,
                "reject": PeerStatus.REJECTED,
                "revoke": PeerStatus.REVOKED,
            }.get(action)
            if status is None or not target:
                raise ValidationError("action", f"unknown peers action {action!r}")
            peer = await set_status(
                store, items, target, status, now=clock.now(), audit=audit, fetch=_fetcher(timeout)
            )
            return peer_json(peer, await items.pinned_cas())
        finally:
            audit.close()


async def verdict_command(
    home: NodeHome, ident: str, verdict: str, *, reason: str = "", confidence: int = 100
) -> JsonValue:
    """Run ``dtim indicators verdict`` against the home's store; returns its JSON result.

    A running node on the same store sends the tombstone at its next round.

    Args:
        ident: the indicator's id, or its value.
        verdict: ``false-positive``, ``revoked`` or ``confirmed``.

    Raises:
        ValidationError: unknown indicator or verdict, bad reason or confidence.
    """
    from dtim.aging import Verdict
    from dtim.gossip.verdicts import find_indicator, record_verdict
    from dtim.web.node import decay_model_for

    chosen = Verdict.parse(verdict)
    identity = load_identity(home.keys_dir)
    clock = SystemClock()
    async with open_store(home) as store:
        indicator = await find_indicator(store, ident)
        done = await record_verdict(
            store,
            indicator.id,
            chosen,
            issuer=identity,
            model=decay_model_for(home),
            now=clock.now(),
            reason=reason,
            confidence=confidence,
            actor="cli",
        )
    audit = AuditLog(
        home.encrypted_logs, Keyring.load_or_create(home.keys_dir, now=clock.now()), clock
    )
    try:
        _audit(audit, {"event": "indicator_verdict", "actor": "cli", **done.audit_fields()})
    finally:
        audit.close()
    return done.to_json()
