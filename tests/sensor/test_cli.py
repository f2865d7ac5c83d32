"""``dtim sensor run`` as a process: killed with SIGKILL while the node is away, nothing is lost;
``dtim sensor token add|list|revoke`` on a node home."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dtim.cli.main import run
from dtim.sensor.queue import QUEUE_FILE
from tests.mesh.cluster import free_port
from tests.sensor.conftest import Node, drop_connections, ufw_scan
from tests.servers import running_server

DEADLINE = 60.0


def _buffered(home: Path) -> int:
    path = home / QUEUE_FILE
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT coalesce(sum(sightings), 0) FROM batches").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _wait(what: str, check: Callable[[], bool], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}\n{log.read_text()[-3000:]}"
        time.sleep(0.05)  # polling a condition with a deadline


@pytest.fixture
def sensor_home(tmp_path: Path) -> Path:
    home = tmp_path / "sensor"
    (home / "config").mkdir(parents=True)
    log = tmp_path / "ufw.log"
    log.write_text("")
    (home / "config" / "dtim.toml").write_text(
        f'[watchers]\nufw_log_path = "{log}"\nstart_at = "beginning"\n'
    )
    return home


@pytest.fixture
def sensors(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_a_killed_sensor_loses_nothing_while_the_node_is_away(
    node: Node, sensor_home: Path, tmp_path: Path, sensors: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    log = tmp_path / "ufw.log"
    output = tmp_path / "sensor.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTIM")}
    env["DTIM_SENSOR_TOKEN"] = node.token
    command = [
        *(sys.executable, "-m", "dtim.cli", "sensor", "run", "--home", str(sensor_home)),
        *("--node", f"https://127.0.0.1:{port}", "--ca", str(node.ca_file), "--timeout", "3"),
    ]

    def start() -> subprocess.Popen[bytes]:
        with output.open("ab") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env
            )  # our CLI
        sensors.append(process)
        return process

    first = start()
    with log.open("a") as out:
        for minute, source in enumerate(["45.13.10.1", "45.13.10.2", "45.13.10.3"]):
            out.write(ufw_scan(source, minute=minute))
    _wait("three sightings buffered", lambda: _buffered(sensor_home) == 3, output)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    with log.open("a") as out:
        out.write(ufw_scan("45.13.10.4", minute=5))

    second = start()
    values = [f"45.13.10.{n}" for n in range(1, 5)]
    with running_server(node.app, ssl_context=node.server_tls, mtls=False, port=port) as up:
        _wait("every scan on the node once", lambda: _on_node(node, values), output)
        _wait("an empty buffer", lambda: _buffered(sensor_home) == 0, output)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, output.read_text()
        drop_connections(up)
    counts = _sighting_counts(node, values)
    assert counts == dict.fromkeys(values, 1), output.read_text()


def _on_node(node: Node, values: list[str]) -> bool:
    return set(_sighting_counts(node, values)) == set(values)


def _sighting_counts(node: Node, values: list[str]) -> dict[str, int]:
    database = node.store.url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT i.value, count(s.id) FROM indicators i JOIN sightings s "
            "ON s.indicator_id = i.id GROUP BY i.value"
        ).fetchall()
    return {value: count for value, count in rows if value in values}


def test_token_commands_add_list_and_revoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "node"
    (home / "config").mkdir(parents=True)
    (home / "config" / "dtim.toml").write_text("")
    assert run(["sensor", "token", "add", "dmz-1", "--home", str(home), "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["name"] == "dmz-1"
    assert added["token"].startswith("dtims_")
    assert run(["sensor", "token", "add", "dmz-1", "--home", str(home)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert run(["sensor", "token", "add", "bad name", "--home", str(home)]) == 1
    capsys.readouterr()
    assert run(["sensor", "token", "revoke", "dmz-1", "--home", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "revoked"
    assert run(["sensor", "token", "list", "--home", str(home), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["status"] == "revoked"
    assert "token" not in listed
    assert run(["sensor", "token", "revoke", "nobody", "--home", str(home)]) == 1


def test_sensor_run_refuses_bad_setups(
    sensor_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["sensor", "run", "--home", str(sensor_home), "--token", "dtims_x"]
    assert run([*base, "--node", "http://127.0.0.1:1"]) == 2
    assert "https://" in capsys.readouterr().err
    assert run([*base, "--node", "https://127.0.0.1:1", "--ca", str(tmp_path / "missing.pem")]) == 2
    assert "CA" in capsys.readouterr().err
    (sensor_home / "config" / "dtim.toml").write_text("")
    assert run([*base, "--node", "https://127.0.0.1:1"]) == 2
    assert "no watcher is on" in capsys.readouterr().err
