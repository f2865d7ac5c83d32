"""End to end: no canary leaves a real node by any outgoing path.

``test_properties.py`` proves the privacy package's own functions never emit a
canary. This module proves the same on the bytes a real node puts on the wire:
a node home with an SQLite store whose indicators carry canaries (internal host
and user names, staff e-mail, RFC 1918 and own addresses, own domains, the
organisation's name, file paths, log lines) in their values, tags, custom fields
and sources, and whose sightings carry local evidence committed through the
node's real sink. Then, at each privacy level, every outgoing path is read raw:

* gossip: reconciliation, pushes and pulls between real nodes over mutual TLS
  (to a recipient peer and to a non-recipient peer, in both directions);
* ``GET /api/v1/indicators/public`` on the peer API (TLS);
* ``GET /api/admin/export`` (stix, json, csv, txt), ``GET /blocklist.txt`` and the MISP
  feed at ``/feeds/misp/``;
* TAXII 2.1 objects at ``/taxii2/`` on the admin listener (taxii2-client);
* webhooks delivered to a receiver on 127.0.0.1 and CEF lines to a UDP collector.

Clean values that should leave are asserted present in each path (so an empty
answer cannot pass), and TLP:AMBER/RED never reach the public endpoint, an
export, a consumer or a peer that is not a recipient.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response
from taxii2client.v21 import Server

from dtim.api.auth import BLOCKLIST_SCOPE, create_api_token
from dtim.config import Settings
from dtim.config.settings import IntegrationsSettings
from dtim.crypto.keyring import Keyring
from dtim.crypto.tls import client_context
from dtim.gossip.client import run_session
from dtim.gossip.transport import HttpTransport
from dtim.integrations.runtime import CURSOR_KEY, build_integrations
from dtim.integrations.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from dtim.model import Evidence, Indicator, JsonValue, Sighting, SystemClock, make_indicator
from dtim.service import TAXII_ACCOUNTS_FILE, StoreSink, build_admin_app, spawn
from dtim.store import Store
from dtim.taxii.accounts import AccountBook, make_account
from dtim.web.node import decay_model_for
from tests.gossip.localnode import LocalNode, local_nodes
from tests.servers import running_server

LEVELS = ("strict", "moderate", "open")
PASSWORD = "a long enough taxii password"
WEBHOOK_SECRET = "webhook-secret-for-canary-test"
DEADLINE = 10.0

# -- the canaries: one of each kind, fixed spellings ------------------------------------------

USER, HOST, FOLDER = "zqkrvtmxw", "zqhbdfwpn", "zqpldnsgc"
LATE_USER, LATE_HOST = "zqwxbncvd", "zqgtsfrdk"  # learned from a sighting after the node started
OTHER_USER, OTHER_HOST = "zqjmfhwtb", "zqcvrlnpx"  # committed by another process of the node
CANARIES = {
    "user": USER,
    "host": HOST,
    "host.corp": f"{HOST}.corp",
    "host.own": f"{HOST}.acme-univ.org",
    "rfc1918": "10.23.45.67",
    "rfc1918-b": "192.168.77.31",
    "own": "81.2.69.77",
    "org": "Acme University",
    "org-short": "acmeu",
    "own-domain": "acme-univ.org",
    "path": f"/home/{FOLDER}/.ssh/id_rsa",
    "folder": FOLDER,
    "winpath": f"C:\\Users\\{FOLDER}x\\Desktop",
    "staff": f"{USER}@acme-univ.org",
    "email": f"{USER}@mailbox.net",
    "log": f"Nov 28 10:00:01 {HOST} sshd[812]: Failed password for {USER} from 10.9.8.7",
    "late-user": LATE_USER,
    "late-host": LATE_HOST,
    "other-user": OTHER_USER,
    "other-host": OTHER_HOST,
}
NEEDLES = sorted({value.lower() for value in CANARIES.values()} | {"10.9.8.7", "sshd[812]"})

# -- what the node holds ----------------------------------------------------------------------

CLEAR_VALUES = ("45.33.32.156", "http://malware.xyz/payload.bin")
GREEN_VALUES = ("evil-c2.xyz", "a" * 64)
AMBER_VALUE = "45.33.32.200"
RED_VALUE = "45.33.32.201"
CANARY_VALUES = (
    CANARIES["rfc1918"],
    CANARIES["own"],
    CANARIES["host.corp"],
    CANARIES["host.own"],
    CANARIES["staff"],
    f"http://{HOST}/login",
    f"http://{CANARIES['rfc1918']}:8080/admin",
    f"http://evil.xyz/{USER}/x",
    f"http://evil.xyz/track?e={CANARIES['email']}",
    f"http://evil.xyz/p?h={CANARIES['host.corp']}",
    f"http://acmeu-login.xyz/{USER}",
    f"{USER}-acmeu.xyz",
    f"{HOST}-cdn.xyz",
)
CLEAN_TAGS = ("ssh-bruteforce", "mirai")


def _planted_tags(user: str, host: str) -> list[str]:
    return [
        f"seen on {host}",
        user,
        host,
        f"from {CANARIES['rfc1918']}",
        f"own {CANARIES['own']}",
        CANARIES["org"],
        CANARIES["org-short"],
        CANARIES["path"],
        CANARIES["winpath"],
        CANARIES["staff"],
        CANARIES["email"],
        CANARIES["host.corp"],
        CANARIES["host.own"],
        CANARIES["log"][:120],
    ]


def _custom(user: str, host: str) -> dict[str, JsonValue]:
    return {
        "family": "mirai",
        "note": f"victim {user} on {host}",
        "who": user,
        "details": {"path": CANARIES["path"], "list": [CANARIES["rfc1918"], {"w": user}]},
        "ticket": CANARIES["org"],
    }


def _indicator(
    value: str,
    tlp: str,
    now: datetime,
    *,
    recipients: tuple[str, ...] = (),
    names: tuple[str, str] = (USER, HOST),
) -> Indicator:
    user, host = names
    return make_indicator(
        value,
        now=now,
        tlp=tlp,
        confidence=90,
        recipients=recipients,
        tags=[*CLEAN_TAGS, *_planted_tags(user, host)],
        custom_fields=_custom(user, host),
        sources=[host, "ufw", CANARIES["host.corp"]],
        sightings=7,
    )


def _evidence(user: str, host: str) -> Evidence:
    log = CANARIES["log"].replace(USER, user).replace(HOST, host)
    return Evidence(
        lines=(log,),
        hosts=(host, f"{host}.corp"),
        users=(user,),
        paths=(CANARIES["path"],),
        details={"host": host, "user": user},
    )


def _sightings(indicators: list[Indicator], evidence: Evidence, now: datetime) -> list[Sighting]:
    return [
        Sighting(
            i, source="ufw", rule="ssh-bruteforce", observed_at=now, count=3, evidence=evidence
        )
        for i in indicators
    ]


def _settings(level: str) -> Settings:
    base = Settings()
    privacy = replace(
        base.privacy,
        level=level,
        own_networks=("81.2.69.0/24",),
        own_domains=("acme-univ.org",),
        org_names=("Acme University", "acmeu"),
        allow_custom_fields=True,
        allowed_custom_fields=("family", "note", "who", "details", "ticket"),
    )
    return replace(base, privacy=privacy)


# -- checks -----------------------------------------------------------------------------------


def assert_no_canary(path: str, raw: bytes) -> None:
    text = raw.decode("utf-8", "replace").lower()
    leaked = [needle for needle in NEEDLES if needle in text]
    assert not leaked, f"{path} leaked {leaked}: {text[:2000]}"


def assert_values(path: str, raw: bytes, present: tuple[str, ...], absent: tuple[str, ...]) -> None:
    text = raw.decode("utf-8", "replace").lower()
    missing = [v for v in present if v.lower() not in text]
    assert not missing, f"{path} lacks values that should leave: {missing}"
    shown = [v for v in absent if v.lower() in text]
    assert not shown, f"{path} shows values it must not: {shown}"


# -- gossip: a wire tap under the node's own transport (real mTLS) ----------------------------


class Tap(httpx.AsyncBaseTransport):
    """A real HTTPS transport that keeps every request and response body."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[bytes] = []
        self.received: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(await request.aread())
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.received.append(body)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


async def gossip_session(initiator: LocalNode, responder: LocalNode) -> Tap:
    """One real push-pull session ``initiator`` -> ``responder``; returns the tapped bytes."""
    context = client_context(
        initiator.home.tls_cert, initiator.home.tls_key, trusted_pems=[responder.ca_pem]
    )
    tap = Tap(httpx.AsyncHTTPTransport(verify=context))
    transport = HttpTransport(
        initiator.identity,
        initiator.home.tls_cert,
        initiator.home.tls_key,
        pins=lambda _peer: responder.ca_pem,
        timeout=DEADLINE,
        clock=SystemClock(),
        network=tap,
    )
    loop = initiator.runtime.loop
    await loop.publish()
    peer = responder.as_peer()
    view = loop.index.view_for(peer.id, peer.groups, datetime.now(UTC))
    try:
        await run_session(transport, peer, view, loop.inbox)
    finally:
        await transport.close()
    return tap


# -- webhooks and CEF -------------------------------------------------------------------------


@dataclass
class Receiver:
    bodies: dict[str, list[bytes]] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook/{level}")
        async def hook(level: str, request: Request) -> Response:
            body = await request.body()
            signed = verify(
                WEBHOOK_SECRET.encode(),
                request.headers[TIMESTAMP_HEADER],
                body,
                request.headers[SIGNATURE_HEADER],
            )
            if not signed:
                return Response(status_code=401)
            self.bodies.setdefault(level, []).append(body)
            return Response(status_code=204)

        return app


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Await ``condition()`` until it is true, with a deadline."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)  # polling other tasks' effects, with a deadline


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TAXII accounts, one per level, granted every TLP and no group (Argon2: made once)."""
    book = AccountBook(tmp_path_factory.mktemp("taxii") / TAXII_ACCOUNTS_FILE)
    for level in LEVELS:
        book.add(
            make_account(level, PASSWORD, level=level, tlps=["clear", "green", "amber", "red"])
        )
    book.save()
    return book.path


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    with running_server(hooks.app()) as server:
        yield hooks, server.base_url


@dataclass
class World:
    level: str
    srv: LocalNode
    alice: LocalNode  # an AMBER/RED recipient
    bob: LocalNode  # an approved peer, not a recipient
    now: datetime


@pytest.fixture(params=LEVELS)
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, accounts_file: Path
) -> AsyncIterator[World]:
    level: str = request.param
    now = datetime.now(UTC)
    # The node's store already holds its indicators and sealed evidence when it starts,
    # committed through the node's own sink (what the watchers do).
    srv_home = tmp_path / "srv"
    keyring = Keyring.load_or_create(srv_home / "keys", now=now)
    (srv_home / "data").mkdir(parents=True)
    async with Store(f"sqlite:///{srv_home / 'data' / 'dtim.db'}") as store:
        planted = [
            _indicator(v, "green" if n % 2 else "clear", now) for n, v in enumerate(CANARY_VALUES)
        ]
        planted += [_indicator(v, "clear", now) for v in CLEAR_VALUES]
        planted += [_indicator(v, "green", now) for v in GREEN_VALUES]
        await StoreSink(store, keyring).commit(_sightings(planted, _evidence(USER, HOST), now), [])
    async with local_nodes(tmp_path, ["srv", "alice", "bob"], settings=_settings(level)) as nodes:
        srv, alice, bob = nodes
        for one, other in ((srv, alice), (alice, srv), (srv, bob), (bob, srv)):
            await one.approve(other)
        srv.home.config_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(accounts_file, srv.home.config_dir / TAXII_ACCOUNTS_FILE)
        # AMBER and RED for alice only, and a sighting with new names after the start.
        names = (LATE_USER, LATE_HOST)
        late = [
            _indicator(AMBER_VALUE, "amber", now, recipients=(alice.id,), names=names),
            _indicator(RED_VALUE, "red", now, recipients=(alice.id,), names=names),
            _indicator("45.33.32.157", "clear", now, names=names),
        ]
        await StoreSink(srv.store, keyring, srv.runtime.privacy, srv.runtime.learner).commit(
            _sightings(late, _evidence(LATE_USER, LATE_HOST), now), []
        )
        # A sighting another process of the node committed (a remote sensor at another node
        # process, the leader's watchers): learned by the catch-up the node runs every 5 s.
        elsewhere = [_indicator("45.33.32.158", "clear", now, names=(OTHER_USER, OTHER_HOST))]
        await StoreSink(srv.store, keyring).commit(
            _sightings(elsewhere, _evidence(OTHER_USER, OTHER_HOST), now), []
        )
        assert srv.runtime.learner is not None
        # The node's own sink taught the filter before committing: only the other
        # process's evidence is opened.
        assert await srv.runtime.learner.catch_up() == len(elsewhere)
        yield World(level, srv, alice, bob, now)


CLEAN_CLEAR = (*CLEAR_VALUES, "45.33.32.157", "45.33.32.158")
SHARED = (*CLEAN_CLEAR, *GREEN_VALUES)
RESTRICTED = (AMBER_VALUE, RED_VALUE)


# -- the test ---------------------------------------------------------------------------------


async def test_no_canary_leaves_by_any_outgoing_path(
    world: World, receiver: tuple[Receiver, str]
) -> None:
    srv, level = world.srv, world.level
    checked: list[str] = []

    def check(path: str, raw: bytes, present: tuple[str, ...], absent: tuple[str, ...]) -> None:
        assert_no_canary(f"{path} [{level}]", raw)
        assert_values(f"{path} [{level}]", raw, present, absent)
        checked.append(path)

    # 1. gossip over mutual TLS: what srv pushes to a non-recipient (bob), what it serves
    #    a recipient (alice) pulling from it; the reconciliation messages both ways.
    to_bob = await gossip_session(srv, world.bob)
    check("gossip push to non-recipient", b"\n".join(to_bob.sent), SHARED, RESTRICTED)
    check("gossip replies to srv", b"\n".join(to_bob.received), (), RESTRICTED)
    from_srv = await gossip_session(world.alice, srv)
    check("gossip pull by recipient", b"\n".join(from_srv.received), (*SHARED, *RESTRICTED), ())
    assert await world.alice.values() >= {*SHARED, *RESTRICTED}

    # 2. the public endpoint of the peer API (TLS, no client certificate).
    public_context = client_context(None, None, trusted_pems=[srv.ca_pem])
    async with httpx.AsyncClient(base_url=srv.url, verify=public_context, timeout=10) as client:
        response = await client.get("/api/v1/indicators/public", params={"limit": 1000})
    assert response.status_code == 200
    check("public endpoint", response.content, CLEAN_CLEAR, (*GREEN_VALUES, *RESTRICTED))

    # 3-4. exports, the blocklist and TAXII on the admin listener as the node builds it.
    admin_token = create_api_token(srv.home.keys_dir, "siem", now=world.now)
    feed_token = create_api_token(
        srv.home.keys_dir, "firewall", now=world.now, scope=BLOCKLIST_SCOPE
    )
    app = build_admin_app(srv.home, srv.store, srv.runtime)
    with running_server(app) as admin:
        async with httpx.AsyncClient(base_url=admin.base_url, timeout=10) as client:
            auth = {"Authorization": f"Bearer {admin_token}"}
            for format in ("stix", "json", "csv", "txt"):
                for export_level in LEVELS:
                    response = await client.get(
                        "/api/admin/export",
                        params={"format": format, "level": export_level},
                        headers=auth,
                    )
                    assert response.status_code == 200, response.text
                    check(f"export {format} {export_level}", response.content, SHARED, RESTRICTED)
            public_only = await client.get(
                "/api/admin/export", params={"format": "json", "tlp": "clear"}, headers=auth
            )
            check(
                "export clear only", public_only.content, CLEAN_CLEAR, (*GREEN_VALUES, *RESTRICTED)
            )
            blocklist = await client.get("/blocklist.txt", params={"token": feed_token})
            assert blocklist.status_code == 200
            check("blocklist", blocklist.content, SHARED, RESTRICTED)
            feed_auth = {"Authorization": f"Bearer {feed_token}"}
            manifest = await client.get("/feeds/misp/manifest.json", headers=feed_auth)
            assert manifest.status_code == 200, manifest.text
            pulled = [manifest.content]
            for name in [*orjson.loads(manifest.content), "hashes.csv"]:
                file = name if name == "hashes.csv" else f"{name}.json"
                response = await client.get(f"/feeds/misp/{file}", headers=feed_auth)
                assert response.status_code == 200, response.text
                pulled.append(response.content)
            check("misp feed", b"\n".join(pulled), SHARED, RESTRICTED)

        taxii = admin.url("/taxii2/")

        def taxii_objects(user: str) -> list[bytes]:
            api_root = Server(taxii, user=user, password=PASSWORD).default
            assert api_root is not None
            out = []
            for collection in api_root.collections:
                if collection.can_read:
                    out.append(orjson.dumps(collection.get_objects()))
            return out

        for user in LEVELS:
            served = await asyncio.to_thread(taxii_objects, user)
            check(f"taxii as {user}", b"\n".join(served), SHARED, RESTRICTED)

    # 5. webhooks (one receiver per level, granted every TLP) and CEF lines over UDP.
    hooks, hooks_url = receiver
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.setblocking(False)
    try:
        settings = IntegrationsSettings(
            webhooks=tuple(
                {
                    "name": f"hook-{hook_level}",
                    "url": f"{hooks_url}/hook/{hook_level}",
                    "secret_env": "CANARY_HOOK_SECRET",
                    "level": hook_level,
                    "tlp": ["clear", "green", "amber", "red"],
                }
                for hook_level in LEVELS
            ),
            syslog_cef_address=f"127.0.0.1:{collector.getsockname()[1]}",
        )
        await srv.store.set_state(CURSOR_KEY, 0)  # hand over what the store holds already
        assert srv.runtime.privacy is not None
        wired = build_integrations(
            settings,
            srv.store,
            srv.runtime.privacy,  # the running node's filter, as run_node passes it
            decay_model_for(srv.home),
            SystemClock(),
            environ={"CANARY_HOOK_SECRET": WEBHOOK_SECRET}.get,
            poll_seconds=0.02,
        )
        assert wired is not None
        task = spawn(wired.run(), name="canary-integrations")
        lines: list[bytes] = []
        loop = asyncio.get_running_loop()

        async def everything_delivered() -> bool:
            while True:
                try:
                    lines.append(await asyncio.wait_for(loop.sock_recv(collector, 65535), 0.01))
                except TimeoutError:
                    break
            delivered = all(
                all(v.lower() in b"".join(hooks.bodies.get(h, [])).decode().lower() for v in SHARED)
                for h in LEVELS
            )
            sent = b"".join(lines).decode("utf-8", "replace").lower()
            return delivered and all(v.lower() in sent for v in SHARED)

        try:
            await wait_for(everything_delivered, "webhook and CEF deliveries")
            assert wired.dispatcher is not None
            await wired.dispatcher.drain()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        collector.close()
    for hook_level in LEVELS:
        check(f"webhook {hook_level}", b"\n".join(hooks.bodies[hook_level]), SHARED, RESTRICTED)
    check("cef", b"\n".join(lines), SHARED, RESTRICTED)
    assert len(checked) >= 20
