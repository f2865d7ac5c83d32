"""``dtim registry run`` as a process: serves HTTPS from its home, stops cleanly, keeps its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from dtim.cli.registry import run as registry_command
from dtim.errors import ConfigError, StoreError
from dtim.registry.client import RegistryClient, registry_tls_context
from tests.registry.conftest import Home, closed_port

# `dtim` itself, with the registry group mounted if the root app does not mount it yet.
RUN_GROUP = (
    "import sys; from dtim.cli import main, registry; "
    "mounted = any(g.name == 'registry' for g in main.app.registered_groups); "
    "mounted or main.app.add_typer(registry.app, name='registry'); "
    "sys.exit(main.run(sys.argv[1:]))"
)
START_DEADLINE = 30.0


@contextmanager
def registry_process(home: Home, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        sys.executable,
        "-c",
        RUN_GROUP,
        "registry",
        "run",
        "--home",
        str(home.root),
        "--port",
        str(port),
    ]
    env = {**os.environ, "DTIM__REGISTRY__LISTEN_ADDRESS": "127.0.0.1"}
    process = subprocess.Popen(
        [*command, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def wait_ready(process: subprocess.Popen[bytes], url: str, ca_pem: str) -> None:
    verify = registry_tls_context([ca_pem])
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"registry exited with {process.returncode}: {output}")
        try:
            if httpx.get(f"{url}/readyz", verify=verify, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise AssertionError("registry did not become ready")
        time.sleep(0.05)  # polling another process, with a deadline


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


async def test_registry_run_serves_and_keeps_its_entries_across_restarts(
    homes: dict[str, Home], tmp_path: Path
) -> None:
    registry, alice = homes["registry"], homes["alice"]
    port = closed_port()
    url = f"https://127.0.0.1:{port}"
    database = f"sqlite:///{tmp_path}/registry.db"
    with registry_process(registry, port, "--db", database) as process:
        wait_ready(process, url, registry.ca_pem)
        async with RegistryClient(url, verify=registry_tls_context([registry.ca_pem])) as client:
            info = await client.describe()
            done = await client.register(alice.identity, alice.endpoint)
        assert info.node_id == registry.identity.node_id
        assert info.heartbeat_seconds == 300
        assert stop(process) == 0
    assert (tmp_path / "registry.db").exists()
    with registry_process(registry, port, "--db", database) as process:
        wait_ready(process, url, registry.ca_pem)
        async with RegistryClient(url, verify=registry_tls_context([registry.ca_pem])) as client:
            listed = await client.peers()
        assert [(e.node_id, e.statement.issued_at) for e in listed.entries] == [
            (alice.identity.node_id, done.issued_at)
        ]
        assert stop(process) == 0


def test_registry_run_without_a_home_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dtim init"):
        registry_command(home=tmp_path / "nowhere", port=None, db=None, sets=None)


def test_registry_run_refuses_an_unknown_database(homes: dict[str, Home]) -> None:
    with pytest.raises(StoreError, match="unsupported database URL"):
        registry_command(home=homes["registry"].root, port=0, db="mysql://nope", sets=None)
