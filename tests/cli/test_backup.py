from __future__ import annotations

import io
import json
import sqlite3
import stat
import tarfile
from pathlib import Path

import pytest

from dtim.backup import restore_backup
from dtim.cli.main import run
from dtim.crypto.sealedfile import seal_with_passphrase
from dtim.errors import ConfigError

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


def _sealed_archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """An archive sealed with the passphrase, as an attacker holding it could make one."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path.write_bytes(seal_with_passphrase(buffer.getvalue(), PASSPHRASE))
    return path


def _file(name: str, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("../outside", tarfile.REGTYPE),
        ("/tmp/absolute", tarfile.REGTYPE),
        ("config/l", tarfile.SYMTYPE),
    ],
)
def test_restore_refuses_unsafe_members_and_writes_nothing(
    tmp_path: Path, name: str, kind: bytes
) -> None:
    info = _file(name)
    info.type = kind
    info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    archive = _sealed_archive(
        tmp_path / "evil.dtimbak", [(_file("config/dtim.toml"), b"x = 1\n"), (info, b"pwned")]
    )
    target = tmp_path / "home" / "restored"
    with pytest.raises(ConfigError, match="unsafe archive member"):
        restore_backup(archive, target, PASSPHRASE)
    assert not target.exists()
    assert not (tmp_path / "home" / "outside").exists()


def test_restore_drops_special_bits_and_follows_no_link_in_the_target(tmp_path: Path) -> None:
    archive = _sealed_archive(
        tmp_path / "node.dtimbak",
        [
            (_file("config/dtim.toml", 0o4777), b"x = 1\n"),
            (_file("keys/identity.key", 0o644), b"secret"),
        ],
    )
    target = tmp_path / "restored"
    (target / "config").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (target / "config" / "dtim.toml").symlink_to(victim)
    with pytest.raises(ConfigError, match=r"cannot restore 'config/dtim\.toml'"):
        restore_backup(archive, target, PASSPHRASE, force=True)
    assert victim.read_text() == "untouched"
    (target / "config" / "dtim.toml").unlink()
    assert restore_backup(archive, target, PASSPHRASE, force=True) == [
        "config/dtim.toml",
        "keys/identity.key",
    ]
    assert stat.S_IMODE((target / "config" / "dtim.toml").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "keys" / "identity.key").stat().st_mode) == 0o600


def test_restore_writes_nothing_through_a_linked_directory_of_the_target(tmp_path: Path) -> None:
    archive = _sealed_archive(
        tmp_path / "node.dtimbak", [(_file("config/deeper/dtim.toml"), b"x = 1\n")]
    )
    target, elsewhere = tmp_path / "restored", tmp_path / "elsewhere"
    target.mkdir()
    elsewhere.mkdir()
    (target / "config").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ConfigError, match="a link out of"):
        restore_backup(archive, target, PASSPHRASE, force=True)
    assert list(elsewhere.iterdir()) == []
