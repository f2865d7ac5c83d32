"""The node half of ``bench/crypto.py``: a real node's peer API, its gossip push route.

The server is what ``dtim node run`` serves to peers (``build_gossip``: SQLite
store, gossip inbox, mutual TLS, rate limits, audit log), with one peer
approved. ``verify+sign`` is the node's own app (request signatures checked,
responses signed); ``off`` is the same stack with the signature guard taken
out and the peer named by its client certificate alone. Every request pushes
new reports (about 1 KiB of body, signed by the peer as the protocol asks),
so each one is stored as a real push is.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
from child_server import serve_and_announce
from starlette.types import ASGIApp, Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' report factory

from tests.gossip.reports import make_report
from tests.servers import loopback_socket

from dtim.api.mtls import TLS_PEER_STATE_KEY
from dtim.api.signatures import PEER_STATE_KEY
from dtim.config import NodeHome, Settings
from dtim.crypto.auditlog import AuditLog
from dtim.crypto.bodysig import sign_body
from dtim.crypto.identity import load_identity
from dtim.crypto.keyring import Keyring
from dtim.crypto.signatures import MessageSigner
from dtim.gossip.report import Report
from dtim.model import Peer, PeerId, PeerStatus, SystemClock
from dtim.model.indicator import JsonValue
from dtim.service import initialise_home
from dtim.store import Store

GOSSIP_PATH = "/api/v1/indicators/gossip"
NODE_MODES = ("off", "verify+sign")
BODY_BYTES = 1024


def node_settings() -> Settings:
    base = Settings()
    # One peer pushes every report here: no per-round quota or rate limit may refuse it.
    network = replace(base.network, listen_address="127.0.0.1", max_new_reports_per_peer=10_000_000)
    return replace(base, network=network)


def make_node(root: Path, client_root: Path) -> None:
    """A node home at ``root/node`` (as ``dtim init`` makes it) that approved the client."""
    home = NodeHome(root=root / "node", settings=node_settings())
    initialise_home(home, host="127.0.0.1")
    now = datetime.now(UTC)
    client = load_identity(client_root / "keys")
    client_ca = (client_root / "certs" / "ca.crt").read_text()

    async def approve() -> None:
        from dtim.store.gossip import GossipStore

        store = Store(home.database_url)
        await store.connect()
        try:
            await store.save_peer(
                Peer(
                    id=PeerId(client.node_id),
                    endpoint="https://127.0.0.1:9",
                    public_key=client.public_key_b64,
                    fingerprint=client.fingerprint,
                    status=PeerStatus.APPROVED,
                    added_at=now,
                )
            )
            await GossipStore(store).pin_peer_ca(client.node_id, client_ca, now=now)
        finally:
            await store.close()

    asyncio.run(approve())


def fresh_copy(root: Path, run: int) -> Path:
    """A copy of the approved node home, so every run starts from the same store."""
    target = root / f"node-run{run}"
    shutil.copytree(root / "node", target)
    return target


def serve_node(mode: str, home_root: Path) -> None:
    """Child process: run the node's peer API in ``mode`` and print its port."""
    import uvicorn

    from dtim.api.mtls import PeerCertificateGuard
    from dtim.api.peer import PUBLIC_PATHS, build_peer_app, peer_routes
    from dtim.api.throttle import BodyLimitGuard, PenaltyGate, RateLimitGuard, TokenBuckets
    from dtim.service import build_gossip

    logging.getLogger("dtim").setLevel(logging.ERROR)  # e.g. "only 1 approved peer"
    home = NodeHome(root=home_root, settings=node_settings())
    identity = load_identity(home.keys_dir)
    clock = SystemClock()

    async def main() -> None:
        store = Store(home.database_url)
        await store.connect()
        audit = AuditLog(home.encrypted_logs, Keyring.load(home.keys_dir), clock)
        runtime = await build_gossip(home, store, identity, audit, clock, origin_hiding=False)
        api, limit = runtime.api, home.settings.network.max_body_bytes
        reputation = api.node.reputation
        assert reputation is not None
        assert runtime.keys is not None
        app: ASGIApp
        if mode == "off":
            penalties = PenaltyGate(lambda peer: reputation.record_misbehaviour(PeerId(peer)))
            app = RateLimitGuard(
                _CertificatePeer(peer_routes(api)),
                TokenBuckets(1e9, 1e9),
                audit=audit,
                penalties=penalties,
            )
            app = BodyLimitGuard(
                PeerCertificateGuard(app, runtime.trust, exempt_paths=PUBLIC_PATHS), limit
            )
        else:
            assert runtime.verifier is not None
            app = build_peer_app(
                api,
                trust=runtime.trust,
                verifier=runtime.verifier,
                signer=MessageSigner(runtime.keys, clock=clock),
                max_body_bytes=limit,
                rate=1e9,
                burst=1e9,
                audit=audit,
            )
        config = runtime.server_config(home)
        config.app = app
        config.log_config = None
        config.log_level = "error"
        config.access_log = False
        await serve_and_announce(uvicorn.Server(config), [loopback_socket()])

    asyncio.run(main())


class _CertificatePeer:
    """Names the peer by its client certificate, as a node without request signatures would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        state[PEER_STATE_KEY] = state.get(TLS_PEER_STATE_KEY)
        await self.app(scope, receive, send)


def _report(number: int, now: int) -> Report:
    bucket = now - now % 3600
    return make_report(
        f"45.{155 + number // 65025}.{number // 255 % 255}.{number % 255 + 1}",
        bucket=bucket,
        expires=bucket + 30 * 86400,
        tags=("ssh-bruteforce",),
    )


def push_bodies(client_root: Path, count: int, start: int) -> list[bytes]:
    """``count`` signed push bodies of about 1 KiB, each with reports never sent before."""
    client = load_identity(client_root / "keys")
    now = int(datetime.now(UTC).timestamp())
    bodies: list[bytes] = []
    number = start
    for _ in range(count):
        reports: list[JsonValue] = []
        while True:
            reports.append(_report(number, now).to_json())
            number += 1
            body = orjson.dumps(sign_body({"indicators": reports}, client))
            if len(body) >= BODY_BYTES - 200:
                break
        bodies.append(body)
    return bodies


def signed_request(
    signer: MessageSigner, path: str, body: bytes, recipient: str, port: int
) -> bytes:
    """One raw HTTP/1.1 POST of ``body`` to ``path``, signed for ``recipient``."""
    signed = signer.sign_request(
        method="POST", path=path, query=None, body=body, recipient=recipient
    )
    head = [
        f"POST {path} HTTP/1.1",
        f"host: 127.0.0.1:{port}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(f"{k}: {v}" for k, v in signed.headers),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def node_requests(
    client_root: Path, home_root: Path, bodies: list[bytes], port: int
) -> list[bytes]:
    """Raw HTTP/1.1 requests pushing ``bodies``, each signed for the node."""
    signer = MessageSigner(load_identity(client_root / "keys"))
    node = load_identity(home_root / "keys").node_id
    return [signed_request(signer, GOSSIP_PATH, body, node, port) for body in bodies]
