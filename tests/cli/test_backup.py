from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from dtim.cli.main import run

PASSPHRASE = "correct horse battery staple"


def test_backup_and_restore_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, restored = tmp_path / "node", tmp_path / "restored"
    assert run(["init", "--home", str(home), "--endpoint", "https://127.0.0.1:3030", "--json"]) == 0
    node_id = json.loads(capsys.readouterr().out)["node_id"]
    assert run(["indicators", "add", "ipv4", "45.13.7.9", "--home", str(home)]) == 0
    archive = tmp_path / "node.dtimbak"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSPHRASE + "\n"))
    assert run(["backup", "--out", str(archive), "--passphrase-stdin", "--home", str(home)]) == 0
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert b"45.13.7.9" not in archive.read_bytes()
    assert b"PRIVATE KEY" not in archive.read_bytes()
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("wrong passphrase!!\n"))
    assert run(["restore", str(archive), "--passphrase-stdin", "--home", str(restored)]) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSPHRASE + "\n"))
    assert run(["restore", str(archive), "--passphrase-stdin", "--home", str(restored)]) == 0
    assert stat.S_IMODE((restored / "keys" / "identity.key").stat().st_mode) == 0o600
    capsys.readouterr()
    assert run(["status", "--json", "--home", str(restored)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["node_id"] == node_id
    assert status["indicators"]["by_type"] == {"ipv4": 1}
    with sqlite3.connect(restored / "data" / "dtim.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSPHRASE + "\n"))
    assert run(["restore", str(archive), "--passphrase-stdin", "--home", str(restored)]) == 2
