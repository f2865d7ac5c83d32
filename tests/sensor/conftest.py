"""A node's sensor endpoint on real uvicorn with TLS (trustme CA), and ufw lines to feed sensors."""

from __future__ import annotations

import ssl
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from fastapi import FastAPI

from dtim.api.sensors import sensor_router
from dtim.crypto.keyring import Keyring
from dtim.sensor.admin import add_sensor
from dtim.service import StoreSink
from dtim.store import Store
from tests.servers import RunningServer


@dataclass
class Node:
    """The node side of a sensor test: its store, keyring, app and one sensor token."""

    store: Store
    keyring: Keyring
    app: FastAPI
    token: str
    server_tls: ssl.SSLContext
    ca_file: Path
    client_tls: ssl.SSLContext


def node_app(store: Store, keyring: Keyring, *, max_body_bytes: int = 4 * 1024 * 1024) -> FastAPI:
    """The admin-side app a test serves: just the sensors' router over the store."""
    app = FastAPI()
    app.include_router(
        sensor_router(store, StoreSink(store, keyring), max_body_bytes=max_body_bytes)
    )
    return app


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """A CA for the node's admin listener certificate."""
    return trustme.CA()


@pytest.fixture
async def node(tmp_path: Path, tls_ca: trustme.CA) -> AsyncIterator[Node]:
    """A connected SQLite store with one sensor token, and the TLS material to serve it."""
    store = Store(f"sqlite:///{tmp_path}/node/dtim.db")
    await store.connect()
    keyring = Keyring.load_or_create(tmp_path / "node-keys", now=datetime.now(UTC))
    added = await add_sensor(store, "dmz-1", datetime.now(UTC))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    ca_file = tmp_path / "node-ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    client_tls = ssl.create_default_context(cafile=str(ca_file))
    try:
        yield Node(
            store,
            keyring,
            node_app(store, keyring),
            str(added["token"]),
            server_tls,
            ca_file,
            client_tls,
        )
    finally:
        await store.close()


def drop_connections(up: RunningServer) -> None:
    """Reset every connection of a test server, as a crash would (so it stops at once)."""
    server = up.server
    loop = server.servers[0].get_loop()
    done = threading.Event()

    def abort() -> None:
        for connection in list(server.server_state.connections):
            connection.transport.abort()
        done.set()

    loop.call_soon_threadsafe(abort)
    assert done.wait(30)


def ufw_scan(source: str, ports: int = 12, minute: int = 0) -> str:
    """ufw BLOCK lines of one source hitting ``ports`` distinct ports (one port-scan sighting)."""
    return "".join(
        f"Sep 30 10:{minute:02d}:{n:02d} gw kernel: [1995541.{n:06d}] [UFW BLOCK] IN=ens2 OUT= "
        f"MAC=de:1c:88:64:10:19:5e:e1:a4:3b:cf:f0:08:00 SRC={source} DST=10.73.140.49 LEN=44 "
        f"TOS=0x00 PREC=0x00 TTL=43 ID={n} PROTO=TCP SPT=52220 DPT={1000 + n} WINDOW=1024 "
        "RES=0x00 SYN URGP=0\n"
        for n in range(ports)
    )
