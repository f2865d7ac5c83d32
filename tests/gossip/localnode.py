"""Real nodes inside the test process: homes from ``initialise_home``, the gossip runtime that
``dtim node run`` builds, and the peer API served by uvicorn on 127.0.0.1 in the test's loop.

Each node's socket is bound before the node is built, so its endpoint (and the
node document) carries the real port without a race.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from dtim.config import NodeHome, Settings
from dtim.crypto.auditlog import AuditLog
from dtim.crypto.identity import NodeIdentity, create_identity
from dtim.crypto.keyring import Keyring
from dtim.crypto.tls import issue_node_certificates
from dtim.model import Indicator, Peer, PeerId, PeerStatus, SystemClock, make_indicator
from dtim.service import GossipRuntime, build_gossip
from dtim.store import Store
from tests.servers import loopback_socket

START = 10.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class LocalNode:
    """One node: home, identity, store, gossip runtime and its running peer API."""

    name: str
    home: NodeHome
    identity: NodeIdentity
    store: Store
    runtime: GossipRuntime
    audit: AuditLog
    url: str

    @property
    def id(self) -> str:
        """The node id."""
        return self.identity.node_id

    def as_peer(self, status: PeerStatus = PeerStatus.APPROVED, groups: Sequence[str] = ()) -> Peer:
        """This node as another node's peer record."""
        return Peer(
            id=PeerId(self.id),
            endpoint=self.url,
            public_key=self.identity.public_key_b64,
            fingerprint=self.identity.fingerprint,
            status=status,
            added_at=datetime.now(UTC),
            groups=tuple(groups),
        )

    @property
    def ca_pem(self) -> str:
        """The node CA certificate."""
        return self.home.tls_ca.read_text()

    async def approve(self, other: LocalNode, groups: Sequence[str] = ()) -> None:
        """Approve ``other`` as a peer (key and CA pinned), effective at once."""
        await self.store.save_peer(other.as_peer(groups=groups))
        await self.runtime.items.pin_peer_ca(other.id, other.ca_pem, now=datetime.now(UTC))
        await self.runtime.directory.refresh(force=True)

    async def add(self, *indicators: Indicator) -> None:
        """Store own indicators (as a watcher or an analyst would)."""
        await self.store.upsert_indicators(list(indicators))

    async def values(self) -> set[str]:
        """Every indicator value this node holds."""
        from dtim.store import IndicatorQuery

        return {i.value for i in await self.store.list_indicators(IndicatorQuery(limit=10_000))}


def indicator(value: str, **fields: Any) -> Indicator:
    """An own indicator seen just now (source ``manual``)."""
    fields.setdefault("sources", ["manual"])
    fields.setdefault("confidence", 80)
    return make_indicator(value, "ipv4", now=datetime.now(UTC), **fields)


def public_ips(count: int, start: int = 0) -> list[str]:
    """Distinct public (non-warninglisted) IPv4 addresses."""
    return [
        f"45.{155 + i // 65025}.{i // 255 % 255}.{i % 255 + 1}" for i in range(start, start + count)
    ]


def _close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def _initialise(home: NodeHome) -> NodeIdentity:
    # What ``dtim init`` does, minus the admin password (argon2 costs a second per home).
    identity = create_identity(home.keys_dir)
    now = datetime.now(UTC)
    issue_node_certificates(
        home.certs_dir, ["127.0.0.1"], now=now, common_name=identity.node_id[:32]
    )
    Keyring.load_or_create(home.keys_dir, now=now)
    home.encrypted_logs.mkdir(parents=True, exist_ok=True)
    return identity


@contextlib.asynccontextmanager
async def local_nodes(
    root: Path,
    names: Sequence[str],
    *,
    origin_hiding: bool = False,
    settings: Settings | None = None,
    server_options: dict[str, Any] | None = None,
) -> AsyncIterator[list[LocalNode]]:
    """Start ``names`` nodes in this event loop; none knows another until approved.

    ``server_options`` overrides attributes of each peer API's uvicorn config
    (e.g. a short ``timeout_keep_alive``).
    """
    base = settings or Settings()
    stack = contextlib.AsyncExitStack()
    nodes: list[LocalNode] = []
    sockets: list[socket.socket] = []
    async with stack:
        # Closed last, after the servers that use them have stopped (or failed to start).
        stack.callback(_close_all, sockets)
        group = await stack.enter_async_context(asyncio.TaskGroup())
        for name in names:
            sock = loopback_socket()
            sockets.append(sock)
            port = sock.getsockname()[1]
            url = f"https://127.0.0.1:{port}"
            network = replace(
                base.network,
                listen_address="127.0.0.1",
                listen_port=port,
                public_endpoint=url,
                gossip_interval_seconds=base.network.gossip_interval_seconds,
            )
            home = NodeHome(root=root / name, settings=replace(base, network=network))
            identity = _initialise(home)
            store = Store(home.database_url)
            await store.connect()
            stack.push_async_callback(store.close)
            clock = SystemClock()
            audit = AuditLog(home.encrypted_logs, Keyring.load(home.keys_dir), clock)
            stack.callback(audit.close)
            runtime = await build_gossip(
                home, store, identity, audit, clock, origin_hiding=origin_hiding
            )
            stack.push_async_callback(runtime.close)
            config = runtime.server_config(home)
            for option, value in (server_options or {}).items():
                setattr(config, option, value)
            server = _Server(config)
            group.create_task(server.serve(sockets=[sock]))
            stack.callback(setattr, server, "should_exit", True)
            nodes.append(LocalNode(name, home, identity, store, runtime, audit, url))
            deadline = asyncio.get_running_loop().time() + START
            while not server.started:
                assert asyncio.get_running_loop().time() < deadline, "server did not start"
                await asyncio.sleep(0.01)
        yield nodes


@contextlib.asynccontextmanager
async def serving(app: Any, ssl_context: Any) -> AsyncIterator[str]:
    """Serve ``app`` over TLS on 127.0.0.1 in this loop (with the TLS scope extension)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from dtim.api.mtls import TLSExtensionMixin

    class Protocol(TLSExtensionMixin, H11Protocol):
        pass

    sock = loopback_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=Protocol,
        ssl_context_factory=lambda _c, _d: ssl_context,
        log_level="warning",
        log_config=None,
        lifespan="off",
        ws="none",
    )
    server = _Server(config)
    async with asyncio.TaskGroup() as group:
        group.create_task(server.serve(sockets=[sock]))
        deadline = asyncio.get_running_loop().time() + START
        while not server.started:
            assert asyncio.get_running_loop().time() < deadline, "server did not start"
            await asyncio.sleep(0.01)
        try:
            yield f"https://127.0.0.1:{port}"
        finally:
            server.should_exit = True
