"""The four APIs under fuzzing, each on a real uvicorn server on 127.0.0.1.

* the peer API of a node built by ``service.build_gossip`` (mTLS, RFC 9421 signed
  requests from a real approved peer, signed answers checked);
* the admin API of a seeded node home (admin API token);
* the TAXII 2.1 routes over a real store and the real privacy filter (HTTP Basic);
* the registry (signed registrations by a real node key).

Each factory is an async context manager run by :func:`tests.adversarial.background.in_background`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from dtim.api.auth import create_api_token
from dtim.api.peer import build_peer_app
from dtim.crypto.certs import issue_node_certificates
from dtim.crypto.identity import NodeIdentity, create_identity
from dtim.crypto.signatures import MessageSigner, RequestVerifier
from dtim.crypto.tls import ClientCertMode, server_context
from dtim.model import SystemClock
from dtim.registry.limits import Rate
from dtim.registry.records import RegistryRecords
from dtim.registry.routes import RegistryOptions, create_registry_app
from dtim.store import Store
from dtim.taxii.accounts import AccountBook, make_account
from dtim.taxii.server import TaxiiSettings
from dtim.taxii.wiring import node_taxii_server
from dtim.web.node import node_admin_app, privacy_filter_for
from tests.adversarial.background import serve
from tests.gossip.localnode import LocalNode, indicator, local_nodes, public_ips
from tests.web.harness import make_home, seed

FUZZ_RATE = 10_000.0
"""Per-peer / per-address rate for the fuzzed servers: the fuzzer's own pace must not be
throttled (429 has tests of its own), or most inputs would never reach a route."""
TAXII_USER = "fuzzer"
TAXII_PASSWORD = "fuzzing is a kind of testing"


def _store_at(database_url: str) -> dict[str, str]:
    return {"DTIM__STORAGE__DATABASE_URL": database_url} if database_url else {}


@dataclass(frozen=True)
class PeerTarget:
    """The fuzzed node's peer API and the approved peer that calls it."""

    url: str
    node: LocalNode
    peer: LocalNode


@contextlib.asynccontextmanager
async def peer_api(root: Path) -> AsyncIterator[PeerTarget]:
    """A node (``build_gossip``) whose peer API approves ``alice``, with some CLEAR indicators."""
    async with local_nodes(root, ["node", "alice"]) as (node, alice):
        await node.approve(alice)
        await alice.approve(node)
        await node.add(*(indicator(v, tlp="clear") for v in public_ips(5)))
        runtime = node.runtime
        # The wiring of build_gossip, with a rate the fuzzer stays under.
        app = build_peer_app(
            runtime.api,
            trust=runtime.trust,
            verifier=RequestVerifier(node.id, runtime.directory),
            signer=MessageSigner(node.identity),
            max_body_bytes=node.home.settings.network.max_body_bytes,
            rate=FUZZ_RATE,
            burst=FUZZ_RATE,
            audit=runtime.audit,
        )
        async with serve(app, ssl_context=runtime.trust.listener_context()) as url:
            yield PeerTarget(url, node, alice)


@dataclass(frozen=True)
class AdminTarget:
    """The admin listener and an admin API token."""

    url: str
    token: str


@contextlib.asynccontextmanager
async def admin_api(root: Path, database_url: str = "") -> AsyncIterator[AdminTarget]:
    """The admin app (``node_admin_app``) of a seeded node home, over plain HTTP as in a node.

    The store is the home's SQLite file, or ``database_url``.
    """
    home = make_home(root / "node", environ=_store_at(database_url))
    store = Store(home.database_url)
    await store.connect()
    try:
        await seed(home, store)
        token = create_api_token(home.keys_dir, "fuzz", now=datetime.now(UTC))
        async with serve(node_admin_app(home, store)) as url:
            yield AdminTarget(url, token)
    finally:
        await store.close()


@dataclass(frozen=True)
class TlsTarget:
    """A server over TLS and the CA file that its certificate chains to."""

    url: str
    ca_file: Path
    identity: NodeIdentity
    extra: Any = None


def _tls_home(root: Path) -> tuple[NodeIdentity, Path]:
    identity = create_identity(root / "keys")
    issue_node_certificates(
        root / "certs", ["127.0.0.1"], now=datetime.now(UTC), common_name=identity.node_id[:32]
    )
    return identity, root / "certs"


@contextlib.asynccontextmanager
async def taxii_api(root: Path, database_url: str = "") -> AsyncIterator[TlsTarget]:
    """The node's TAXII server (``node_taxii_server``) at /taxii2 over TLS, a store with data.

    The store is the home's SQLite file, or ``database_url``.
    """
    home = make_home(root / "node", environ=_store_at(database_url))
    store = Store(home.database_url)
    await store.connect()
    try:
        await seed(home, store)
        accounts = AccountBook(root / "taxii-users.json")
        accounts.add(
            make_account(
                TAXII_USER,
                TAXII_PASSWORD,
                level="open",
                tlps=["clear", "green", "amber"],
                can_write=True,
            )
        )
        accounts.save()
        server = node_taxii_server(
            store,
            privacy_filter_for(home),
            accounts.path,
            SystemClock(),
            settings=TaxiiSettings(max_content_length=64 * 1024),
        )
        taxii = server.app()
        # Paths the mount itself cannot route (a newline in a segment) get TAXII errors too.
        app = Starlette(
            routes=[Mount("/taxii2", app=taxii)], exception_handlers=taxii.exception_handlers
        )
        certs = home.certs_dir
        tls = server_context(
            certs / "node.crt", certs / "node.key", client_cert=ClientCertMode.NONE
        )
        async with serve(app, ssl_context=tls) as url:
            yield TlsTarget(url, certs / "ca.crt", NodeIdentity.generate(), server)
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def registry_api(root: Path) -> AsyncIterator[TlsTarget]:
    """A registry (``create_registry_app``) over TLS on SQLite; exact reads, fuzz-paced limits."""
    identity, certs = _tls_home(root / "registry")
    records = RegistryRecords(f"sqlite:///{root}/registry.db")
    await records.connect()
    try:
        options = RegistryOptions(
            list_cache_seconds=0,
            address_rate=Rate(FUZZ_RATE, int(FUZZ_RATE)),
            key_rate=Rate(FUZZ_RATE, int(FUZZ_RATE)),
        )
        app = create_registry_app(records, identity, options)
        tls = server_context(
            certs / "node.crt", certs / "node.key", client_cert=ClientCertMode.NONE
        )
        async with serve(app, ssl_context=tls) as url:
            yield TlsTarget(url, certs / "ca.crt", identity, NodeIdentity.generate())
    finally:
        await records.close()
