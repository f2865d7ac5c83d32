"""The integration feed over a real store: webhooks (HMAC-checked receiver), CEF over UDP and TCP,
a cursor that survives restarts, and senders that never make the feed wait."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response
from tests.servers import running_server

from dtim.aging import DecayModel
from dtim.config.settings import IntegrationsSettings
from dtim.errors import ConfigError
from dtim.integrations.cef import CefSender, CefTcpSender
from dtim.integrations.runtime import (
    CURSOR_KEY,
    CefRoute,
    IntegrationFeed,
    build_integrations,
    parse_address,
    webhook_targets,
)
from dtim.integrations.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDispatcher,
    WebhookTarget,
    verify,
)
from dtim.metrics import Metrics
from dtim.model import FakeClock, make_indicator
from dtim.privacy import Destination, PrivacyFilter, PrivacyPolicy
from dtim.store import Store

SECRET = b"feed-test-secret"


def hook_receiver() -> tuple[FastAPI, list[str], list[int]]:
    """A receiver that refuses bad signatures (401) and records indicator values."""
    app = FastAPI()
    values: list[str] = []
    refused = [0]

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        body = await request.body()
        headers = request.headers
        if not verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER]):
            refused[0] += 1
            return Response(status_code=401)
        values.append(orjson.loads(body)["indicator"]["value"])
        return Response(status_code=204)

    return app, values, refused


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def udp_collector() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def drained(sock: socket.socket, into: list[bytes]) -> int:
    """Move every waiting datagram into ``into``; returns how many it holds."""
    while True:
        try:
            into.append(sock.recv(65535))
        except BlockingIOError:
            return len(into)


def feed_for(store: Store, clock: FakeClock, **kwargs: object) -> IntegrationFeed:
    return IntegrationFeed(
        store,
        PrivacyFilter(PrivacyPolicy()),
        DecayModel(),
        clock,
        metrics=Metrics(),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_feed_delivers_and_a_restart_neither_repeats_nor_skips(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([make_indicator("45.13.7.1", now=clock.now(), confidence=90)])
    app, values, refused = hook_receiver()
    collector = udp_collector()
    with running_server(app) as server, collector:
        target = WebhookTarget("siem", server.url("/hook"), SECRET, min_confidence=60)
        async with httpx.AsyncClient() as client, CefSender(*collector.getsockname()) as udp:
            dispatcher = WebhookDispatcher(
                [target], PrivacyFilter(PrivacyPolicy()), client, metrics=Metrics()
            )
            worker = asyncio.ensure_future(dispatcher.run())
            try:
                route = CefRoute(udp, min_confidence=80, types=frozenset({"ipv4", "domain"}))
                first = feed_for(store, clock, webhooks=dispatcher, cef=route)
                # First start: begins at the end of the feed, what was stored before is not sent.
                assert await first.pump() == 0
                assert await store.get_state(CURSOR_KEY) == await store.last_seq()
                await store.upsert_indicators(
                    [
                        make_indicator("45.13.7.2", now=clock.now(), confidence=90),
                        make_indicator("45.13.7.3", now=clock.now(), confidence=70),  # no CEF
                        make_indicator("45.13.7.4", now=clock.now(), confidence=40),  # neither
                        make_indicator("malware-c2.xyz", now=clock.now(), confidence=95),
                        make_indicator(
                            "d41d8cd98f00b204e9800998ecf8427e", now=clock.now(), confidence=99
                        ),
                        make_indicator("45.13.7.5", now=clock.now(), confidence=99, tlp="amber"),
                    ]
                )
                assert await first.pump() == 6
                await asyncio.wait_for(dispatcher.drain(), 10)
                assert sorted(values) == [
                    "45.13.7.2",
                    "45.13.7.3",
                    "d41d8cd98f00b204e9800998ecf8427e",
                    "malware-c2.xyz",
                ]
                lines: list[bytes] = []
                await wait_for(lambda: drained(collector, lines) >= 2)
                assert b"src=45.13.7.2" in b"".join(lines)
                assert b"dhost=malware-c2.xyz" in b"".join(lines)
                # Changes made while the feed is down are handed over by the next run, once.
                await store.upsert_indicators(
                    [make_indicator("45.13.7.6", now=clock.now(), confidence=90)]
                )
                second = feed_for(store, clock, webhooks=dispatcher, cef=route)
                assert await second.pump() == 1
                assert await second.pump() == 0
                await asyncio.wait_for(dispatcher.drain(), 10)
                await wait_for(lambda: drained(collector, lines) >= 3)
            finally:
                worker.cancel()
    assert values.count("45.13.7.6") == 1
    assert len(values) == 5
    assert refused[0] == 0
    assert len(lines) == 3


async def test_same_payload_is_not_sent_twice_but_a_change_is(
    store: Store, clock: FakeClock
) -> None:
    sent: list[str] = []

    class Sink:
        def send(self, shared: object) -> None:
            sent.append(shared.to_json()["value"])  # type: ignore[attr-defined]

    feed = feed_for(store, clock, cef=CefRoute(Sink()))
    await feed.pump()
    await store.upsert_indicators([make_indicator("45.13.9.1", now=clock.now(), confidence=80)])
    await feed.pump()
    await store.upsert_indicators([make_indicator("45.13.9.1", now=clock.now(), confidence=80)])
    assert await feed.pump() == 1  # a new change number ...
    assert sent == ["45.13.9.1"]  # ... but the receiver would see the same thing
    await store.replace_indicator(
        make_indicator("45.13.9.1", now=clock.now(), confidence=80, tlp="clear")
    )
    await feed.pump()
    assert sent == ["45.13.9.1", "45.13.9.1"]  # the marking changed: sent again
    clock.advance(timedelta(days=31).total_seconds())  # IPv4 lives 30 days: expired, not sent
    await store.upsert_indicators(
        [make_indicator("45.13.9.2", now=clock.now() - timedelta(days=31), confidence=80)]
    )
    await feed.pump()
    assert "45.13.9.2" not in sent


async def test_tcp_syslog_buffers_while_the_collector_is_away_and_never_blocks() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics = Metrics()
    sender = CefTcpSender(
        "127.0.0.1", port, queue_size=3, timeout=1.0, max_delay=0.2, metrics=metrics
    )
    runner = asyncio.ensure_future(sender.run())
    now = FakeClock().now()
    privacy = PrivacyFilter(PrivacyPolicy())
    try:
        started = time.monotonic()
        for n in range(5):
            shared = privacy.share(
                make_indicator(f"45.13.10.{n + 1}", now=now), Destination.consumer("x")
            )
            assert shared is not None
            sender.send(shared)
        assert time.monotonic() - started < 0.1  # nobody listens; send still returns at once
        assert (
            metrics.value("dtim_cef_lines_total", transport="tcp", outcome="dropped_queue_full")
            == 2
        )
        received = bytearray()

        async def collect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while chunk := await reader.read(65536):
                received.extend(chunk)
            writer.close()

        server = await asyncio.start_server(collect, "127.0.0.1", port)
        async with server:
            await wait_for(lambda: received.count(b"CEF:0|DTIM|") == 3)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    frames = bytes(received)
    # RFC 6587 octet counting: "<length> <message>", back to back.
    offset, messages = 0, []
    while offset < len(frames):
        length, _, rest = frames[offset:].partition(b" ")
        messages.append(rest[: int(length)])
        offset += len(length) + 1 + int(length)
    assert [m.split(b"src=")[1].split(b" ")[0] for m in messages] == [
        b"45.13.10.1",
        b"45.13.10.2",
        b"45.13.10.3",
    ]
    assert all(m.startswith(b"<133>1 ") for m in messages)


def test_settings_errors_name_the_setting() -> None:
    env = {"HOOK_SECRET": "s3cret"}.get
    with pytest.raises(ConfigError, match="secret_env"):
        webhook_targets([{"url": "https://siem.example/h", "secret_env": "MISSING"}], env)
    with pytest.raises(ConfigError, match=r"webhooks\[1\]\.url"):
        webhook_targets([{"url": "ftp://siem.example/h", "secret_env": "HOOK_SECRET"}], env)
    with pytest.raises(ConfigError, match=r"webhooks\[1\]\.tlp"):
        webhook_targets(
            [{"url": "https://s.example/h", "secret_env": "HOOK_SECRET", "tlp": ["purple"]}], env
        )
    (target,) = webhook_targets(
        [{"url": "https://s.example/h", "secret_env": "HOOK_SECRET", "types": ["ipv4"]}], env
    )
    assert target.secret == b"s3cret"
    assert "s3cret" not in repr(target)
    assert parse_address("[::1]:514", key="k") == ("::1", 514)
    with pytest.raises(ConfigError, match="syslog_cef_address"):
        parse_address("collector", key="integrations.syslog_cef_address")


async def test_nothing_configured_builds_nothing(store: Store, clock: FakeClock) -> None:
    built = build_integrations(
        IntegrationsSettings(),
        store,
        PrivacyFilter(PrivacyPolicy()),
        DecayModel(),
        clock,
        environ=lambda _name: None,
    )
    assert built is None
