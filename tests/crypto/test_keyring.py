"""AES-256-GCM keyring: sealing, rotation, files and failure modes."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dtim.crypto.keyring import KEYRING_FILE, OVERHEAD, Keyring
from dtim.errors import CryptoError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_create_writes_a_0600_file(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keys", now=NOW)
    path = tmp_path / "keys" / KEYRING_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert keyring.current_created == NOW
    with pytest.raises(CryptoError, match="already exists"):
        Keyring.create(tmp_path / "keys", now=NOW)


def test_seal_open_roundtrip_with_aad(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path, now=NOW)
    blob = keyring.seal(b"secret evidence", b"ctx")
    assert len(blob) == len(b"secret evidence") + OVERHEAD
    assert b"secret evidence" not in blob
    assert keyring.open(blob, b"ctx") == b"secret evidence"
    assert keyring.seal(b"x", b"ctx") != keyring.seal(b"x", b"ctx")  # fresh nonces
    with pytest.raises(CryptoError, match="failed authentication"):
        keyring.open(blob, b"other")
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(CryptoError, match="failed authentication"):
        keyring.open(bytes(tampered), b"ctx")
    with pytest.raises(CryptoError, match="truncated"):
        keyring.open(blob[:10])


def test_relabelled_key_id_does_not_open(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path, now=NOW)
    blob = keyring.seal(b"data")
    old_id = keyring.current_key_id
    keyring.rotate(now=NOW)
    relabelled = blob[:1] + keyring.current_key_id.to_bytes(4, "big") + blob[5:]
    with pytest.raises(CryptoError):
        keyring.open(relabelled)
    assert keyring.open(blob) == b"data"
    assert old_id in keyring.key_ids


def test_rotations_keep_every_old_key(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path, now=NOW)
    blobs = [keyring.seal(b"gen0")]
    for generation in range(1, 4):
        keyring.rotate(now=NOW + timedelta(days=7 * generation))
        blobs.append(keyring.seal(f"gen{generation}".encode()))
    assert len(set(keyring.key_ids)) == 4
    reloaded = Keyring.load(tmp_path)
    assert reloaded.current_key_id == keyring.current_key_id
    assert [reloaded.open(b) for b in blobs] == [b"gen0", b"gen1", b"gen2", b"gen3"]


def test_rotation_by_another_process_is_kept_and_picked_up(tmp_path: Path) -> None:
    node = Keyring.create(tmp_path, now=NOW)
    cli = Keyring.load(tmp_path)
    cli.rotate(now=NOW + timedelta(days=1))
    blob = cli.seal(b"from the cli")
    assert node.open(blob) == b"from the cli"  # unknown id triggers a reload
    node.rotate(now=NOW + timedelta(days=2))  # must not drop the CLI's key
    assert set(cli.key_ids) < set(Keyring.load(tmp_path).key_ids)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "truncated or not JSON"),
        (b'{"format": "dtim-keyring", "current": 1, "keys": [{"id": 1', "truncated"),
        (b'{"format": "other"}', "not a DTIM keyring"),
        (b'{"format": "dtim-keyring", "current": 1, "keys": []}', "no keys"),
        (
            b'{"format": "dtim-keyring", "current": 1, "keys": '
            b'[{"id": 1, "created": "2026-01-01T00:00:00Z", "secret": "AAAA"}]}',
            "not a 256-bit key",
        ),
        (
            b'{"format": "dtim-keyring", "current": 2, "keys": '
            b'[{"id": 1, "created": "2026-01-01T00:00:00Z", "secret": "' + b"A" * 43 + b'="}]}',
            "current key 2 is not",
        ),
        (
            b'{"format": "dtim-keyring", "current": 1, "keys": [{"id": 1, "created": "x"}]}',
            "malformed",
        ),
    ],
)
def test_bad_keyring_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / KEYRING_FILE
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(CryptoError, match=message):
        Keyring.load(tmp_path)


def test_open_keyring_file_is_refused(tmp_path: Path) -> None:
    Keyring.create(tmp_path, now=NOW)
    (tmp_path / KEYRING_FILE).chmod(0o640)
    with pytest.raises(CryptoError, match="too open"):
        Keyring.load(tmp_path)
    with pytest.raises(CryptoError, match="missing"):
        Keyring.load(tmp_path / "nowhere")


def test_repr_hides_secrets(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path, now=NOW)
    text = (tmp_path / KEYRING_FILE).read_text()
    secret = text.split('"secret": "')[1].split('"')[0]
    assert secret not in repr(keyring)
    assert Keyring.load_or_create(tmp_path, now=NOW).current_key_id == keyring.current_key_id
