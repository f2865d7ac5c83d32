"""``dtim keys rotate`` and ``dtim logs show`` on a real node home."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dtim.cli import keys, logs
from dtim.cli.main import run
from dtim.crypto.identity import load_identity
from dtim.crypto.keyring import Keyring
from dtim.crypto.rotation import load_rollovers
from dtim.errors import ConfigError

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = tmp_path / "node"
    assert run(["init", "--home", str(root), "--endpoint", "https://127.0.0.1:3030", "--json"]) == 0
    capsys.readouterr()
    return root


def secrets_of(home: Path) -> list[str]:
    found = []
    for name in ("keys/identity.key", "certs/node.key", "certs/ca.key"):
        found += [line for line in (home / name).read_text().splitlines()[1:-1] if len(line) > 16]
    text = (home / "keys" / "keyring").read_text()
    found += [part.split('"')[0] for part in text.split('"secret": "')[1:]]
    return found


def test_rotate_everything_then_show_the_log(home: Path) -> None:
    old_id = load_identity(home / "keys").node_id
    result = runner.invoke(keys.app, ["rotate", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    rotated = json.loads(result.stdout)["rotated"]
    assert set(rotated) == {"identity", "tls", "logs"}
    assert rotated["identity"]["old_node_id"] == old_id
    assert load_identity(home / "keys").node_id == rotated["identity"]["new_node_id"]
    assert load_rollovers(home / "keys")[-1].old_node_id == old_id

    shown = runner.invoke(logs.app, ["show", "--home", str(home), "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    kinds = [r["kind"] for r in document["records"] if r["event"] == "key_rotated"]
    assert kinds == ["identity", "tls", "logs"]
    assert document["damaged"] == 0
    for secret in secrets_of(home):
        assert secret not in result.output
        assert secret not in shown.output


def test_logs_written_across_three_log_rotations_stay_readable(home: Path) -> None:
    before = len(Keyring.load_or_create(home / "keys", now=datetime.now(UTC)).key_ids)
    for _ in range(3):
        result = runner.invoke(keys.app, ["rotate", "--logs", "--home", str(home)])
        assert result.exit_code == 0, result.output
        assert "rotated logs: key_id" in result.stdout
    assert len(Keyring.load(home / "keys").key_ids) == before + 3
    shown = runner.invoke(logs.app, ["show", "--home", str(home)])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.count("key_rotated") == 3


def test_show_text_bad_date_and_missing_home(home: Path, tmp_path: Path) -> None:
    empty = runner.invoke(logs.app, ["show", "--home", str(home), "--date", "2020-01-01"])
    assert "no audit records for 2020-01-01" in empty.stdout
    bad = runner.invoke(logs.app, ["show", "--home", str(home), "--date", "01/02/2020"])
    assert isinstance(bad.exception, ConfigError)
    assert "YYYY-MM-DD" in str(bad.exception)
    missing = runner.invoke(logs.app, ["show", "--home", str(tmp_path / "nowhere")])
    assert isinstance(missing.exception, ConfigError)


def test_home_from_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTIM_HOME", str(home))
    result = runner.invoke(keys.app, ["rotate", "--tls", "--json"])
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)["rotated"]) == ["tls"]
