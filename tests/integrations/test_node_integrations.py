"""A real ``dtim node run --log-format json`` process: its stderr is JSON lines, and its
integrations deliver to a local webhook receiver (HMAC checked) and a UDP syslog collector
while a second webhook receiver hangs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response
from tests.mesh.cluster import CLI, dtim, free_port
from tests.servers import running_server

from dtim.integrations.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from dtim.model import SystemClock, make_indicator
from dtim.store import Store

SECRET = "node-webhook-secret-value"
VALUES = ("45.13.20.1", "45.13.20.2", "malware-c2.xyz")


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling another process's effects, with a deadline


@pytest.fixture
def hanging() -> Iterator[tuple[FastAPI, list[int]]]:
    """A receiver that accepts the connection and never answers (until the test ends)."""
    release = threading.Event()
    app = FastAPI()
    calls = [0]

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        calls[0] += 1
        await request.body()
        await asyncio.to_thread(release.wait, 120)
        return Response(status_code=204)

    yield app, calls
    release.set()


def test_node_logs_json_and_feeds_integrations_without_blocking(
    tmp_path: Path, hanging: tuple[FastAPI, list[int]]
) -> None:
    good = FastAPI()
    delivered: list[str] = []

    @good.post("/hook")
    async def hook(request: Request) -> Response:
        body = await request.body()
        if not verify(
            SECRET.encode(),
            request.headers[TIMESTAMP_HEADER],
            body,
            request.headers[SIGNATURE_HEADER],
        ):
            return Response(status_code=401)
        delivered.append(orjson.loads(body)["indicator"]["value"])
        return Response(status_code=204)

    hang_app, hang_calls = hanging
    port, admin = free_port(), free_port()
    home = tmp_path / "node"
    dtim("init", "--home", str(home), "--endpoint", f"https://127.0.0.1:{port}")
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(0.2)
    lines: list[str] = []
    with running_server(good) as fast, running_server(hang_app) as slow, collector:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTIM")}
        env.update(
            HOOK_SECRET=SECRET,
            DTIM__NETWORK__LISTEN_ADDRESS="127.0.0.1",
            DTIM__NETWORK__LISTEN_PORT=str(port),
            DTIM__ADMIN__LISTEN_PORT=str(admin),
            DTIM__INTEGRATIONS__WEBHOOKS=json.dumps(
                [
                    {"name": "hangs", "url": slow.url("/hook"), "secret_env": "HOOK_SECRET"},
                    {
                        "name": "siem",
                        "url": fast.url("/hook"),
                        "secret_env": "HOOK_SECRET",
                        "min_confidence": 50,
                    },
                ]
            ),
            DTIM__INTEGRATIONS__SYSLOG_CEF_ADDRESS=f"127.0.0.1:{collector.getsockname()[1]}",
            DTIM__INTEGRATIONS__SYSLOG_MIN_CONFIDENCE="80",
            # A URL with a password: the JSON logs must never show it.
            DTIM__NETWORK__REGISTRY_URL="https://user:registry-password@127.0.0.1:9/",
        )
        process = subprocess.Popen(  # our own CLI
            [sys.executable, "-c", CLI, "node", "run", "--home", str(home), "--log-format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
        reader.start()
        try:
            wait_until(lambda: _ready(admin) or process.poll() is not None, 60, "the node to start")
            assert process.poll() is None, "".join(lines)

            async def add() -> None:
                async with Store(f"sqlite:///{home / 'data' / 'dtim.db'}") as store:
                    now = SystemClock().now()
                    await store.upsert_indicators(
                        [make_indicator(value, now=now, confidence=90) for value in VALUES]
                        + [make_indicator("45.13.20.9", now=now, confidence=60)]
                    )

            asyncio.run(add())
            cef: list[bytes] = []

            def collected() -> bool:
                with contextlib.suppress(TimeoutError):
                    cef.append(collector.recv(65535))
                return len(cef) >= len(VALUES)

            wait_until(
                lambda: sorted(delivered) == sorted([*VALUES, "45.13.20.9"]), 30, "webhook delivery"
            )
            wait_until(collected, 30, "CEF lines")
            assert hang_calls[0] >= 1  # the hanging receiver holds a call open right now ...
            started = time.monotonic()
            assert httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=5).status_code == 200
            assert time.monotonic() - started < 2  # ... and the node answers regardless
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0  # a hanging receiver does not hold up shutdown
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            reader.join(timeout=5)
            if process.stderr is not None:
                process.stderr.close()
    assert all(b"CEF:0|DTIM|DTIM|" in line for line in cef)
    assert not any(b"45.13.20.9" in line for line in cef)  # below syslog_min_confidence
    records = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    assert records
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
    assert any(r["logger"] == "dtim" and "peer API on" in r["message"] for r in records)
    text = "".join(lines)
    assert SECRET not in text
    assert "registry-password" not in text


def _ready(admin: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{admin}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
