from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dtim.cli.main import run
from dtim.crypto.passwords import verify_password


def dtim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dtim.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_a_complete_home_with_safe_modes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "node"
    assert (
        run(["init", "--home", str(home), "--endpoint", "https://node1.example:3030", "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["node_id"]) == 64
    assert summary["fingerprint"].startswith("SHA256:")
    assert summary["endpoint"] == "https://node1.example:3030"
    assert mode(home / "keys") == 0o700
    for secret in ("identity.key", "admin.argon2"):
        assert mode(home / "keys" / secret) == 0o600
    assert mode(home / "certs" / "node.key") == 0o600
    assert mode(home / "certs" / "ca.key") == 0o600
    assert (home / "certs" / "node.crt").exists()
    assert (home / "data").is_dir()
    config = (home / "config" / "dtim.toml").read_text()
    assert 'public_endpoint = "https://node1.example:3030"' in config
    assert "# Recommendation:" in config
    assert verify_password((home / "keys" / "admin.argon2").read_text(), summary["admin_password"])
    assert summary["admin_password"] not in config


def test_init_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "node"
    assert run(["init", "--home", str(home), "--endpoint", "https://127.0.0.1:3030", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert run(["init", "--home", str(home)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (
        run(
            [
                "init",
                "--home",
                str(home),
                "--endpoint",
                "https://127.0.0.1:3030",
                "--force",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["node_id"] != first["node_id"]


def test_init_rejects_a_non_https_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init", "--home", str(tmp_path / "n"), "--endpoint", "http://x:3030"]) == 2
    assert "expected an https:// URL" in capsys.readouterr().err


def test_status_and_indicators_through_the_console_script(tmp_path: Path) -> None:
    home = str(tmp_path / "node")
    assert dtim("init", "--home", home, "--endpoint", "https://127.0.0.1:3030").returncode == 0
    added = dtim(
        "indicators",
        "add",
        "url",
        "hxxp://evil[.]example/login",
        "--tlp",
        "amber",
        "--tags",
        "phishing,creds",
        "--recipient",
        "isac",
        "--json",
        "--home",
        home,
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["value"] == "http://evil.example/login"
    assert dtim("indicators", "add", "auto", "198.51.100.7", "--home", home).returncode == 0
    listed = dtim("indicators", "list", "--json", "--home", home)
    rows = json.loads(listed.stdout)
    assert {r["value"] for r in rows} == {"http://evil.example/login", "198.51.100.7"}
    for row in rows:
        assert {
            "type",
            "value",
            "confidence",
            "created",
            "modified",
            "sightings",
            "tags",
            "tlp",
            "recipients",
            "custom_fields",
        } <= row.keys()
    shown = json.loads(dtim("indicators", "show", "198.51.100.7", "--json", "--home", home).stdout)
    assert shown["type"] == "ipv4"
    status = json.loads(dtim("status", "--json", "--home", home).stdout)
    assert status["endpoint"] == "https://127.0.0.1:3030"
    assert status["indicators"]["by_type"] == {"url": 1, "ipv4": 1}
    assert status["indicators"]["by_tlp"] == {"amber": 1, "green": 1}
    assert len(status["node_id"]) == 64
    assert status["fingerprint"].startswith("SHA256:")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["status"], 2, "no DTIM node home"),
        (["indicators", "add", "ipv4", "300.1.1.1"], 1, "not an IPv4 address"),
        (["indicators", "add", "ipv4", "1.2.3.4", "--tlp", "blue"], 1, "unknown TLP"),
        (["indicators", "show", "nothing.example"], 1, "no indicator"),
        (
            ["status", "--set", "network.listen_port=abc"],
            2,
            "network.listen_port: expected an integer",
        ),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    home = tmp_path / "node"
    if args[0] != "status" or "--set" in args:
        assert (
            dtim("init", "--home", str(home), "--endpoint", "https://127.0.0.1:3030").returncode
            == 0
        )
    result = dtim(*args, "--home", str(home))
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_file_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert dtim("init", "--home", str(home), "--endpoint", "https://127.0.0.1:3030").returncode == 0
    config = home / "config" / "dtim.toml"
    config.write_text(config.read_text().replace("peers_per_round = 3", 'peers_per_round = "many"'))
    result = dtim("status", "--home", str(home))
    assert result.returncode == 2
    line = next(
        n
        for n, text in enumerate(config.read_text().splitlines(), 1)
        if text.startswith("peers_per_round")
    )
    assert (
        f"{config}:{line}: network.peers_per_round: expected an integer, got 'many'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_home_comes_from_the_environment(tmp_path: Path) -> None:
    home = tmp_path / "envhome"
    assert (
        dtim(
            "init", "--endpoint", "https://127.0.0.1:3030", env={"DTIM_HOME": str(home)}
        ).returncode
        == 0
    )
    assert (home / "config" / "dtim.toml").exists()
