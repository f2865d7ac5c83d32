"""Node identity: generation, files, permissions and error messages."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
from pathlib import Path

import pytest

from dtim.crypto.identity import (
    IDENTITY_KEY_FILE,
    IDENTITY_PUB_FILE,
    NodeIdentity,
    create_identity,
    decode_public_key,
    fingerprint_of,
    load_identity,
    load_public_identity,
    verify_ed25519,
)
from dtim.errors import CryptoError, SignatureError


def test_create_writes_0600_key_in_0700_dir(tmp_path: Path) -> None:
    keys = tmp_path / "home" / "keys"
    identity = create_identity(keys)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys / IDENTITY_KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((keys / IDENTITY_PUB_FILE).stat().st_mode) == 0o644
    assert load_identity(keys).node_id == identity.node_id
    assert load_public_identity(keys) == (identity.node_id, identity.public_key_b64)


def test_node_id_and_fingerprint_forms() -> None:
    identity = NodeIdentity.generate()
    raw = base64.b64decode(identity.public_key_b64)
    assert len(raw) == 32
    assert identity.node_id == hashlib.sha256(raw).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", identity.node_id)
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", identity.fingerprint)
    assert identity.fingerprint == fingerprint_of(raw)
    assert "node_id" in repr(identity)
    assert "PRIVATE" not in repr(identity)


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    first = create_identity(tmp_path)
    with pytest.raises(CryptoError, match="already exists"):
        create_identity(tmp_path)
    assert create_identity(tmp_path, overwrite=True).node_id != first.node_id


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CryptoError, match="identity key is missing"):
        load_identity(tmp_path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_group_or_other_readable_key_is_refused(tmp_path: Path, mode: int) -> None:
    create_identity(tmp_path)
    (tmp_path / IDENTITY_KEY_FILE).chmod(mode)
    with pytest.raises(CryptoError, match="too open") as info:
        load_identity(tmp_path)
    assert f"{mode:04o}" in str(info.value)


def test_truncated_key_is_refused_without_quoting_it(tmp_path: Path) -> None:
    identity = create_identity(tmp_path)
    path = tmp_path / IDENTITY_KEY_FILE
    pem = path.read_bytes()
    path.write_bytes(pem[: len(pem) // 2])
    with pytest.raises(CryptoError, match="truncated") as info:
        load_identity(tmp_path)
    body = pem.decode().splitlines()[1]
    assert body[:20] not in str(info.value)
    assert identity.node_id not in str(info.value)


def test_other_key_type_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    create_identity(tmp_path)
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / IDENTITY_KEY_FILE).write_bytes(other)
    with pytest.raises(CryptoError, match="not an Ed25519 key"):
        load_identity(tmp_path)


def test_mismatched_public_file_is_refused(tmp_path: Path) -> None:
    create_identity(tmp_path)
    other = NodeIdentity.generate()
    (tmp_path / IDENTITY_PUB_FILE).write_bytes(other.public_pem())
    with pytest.raises(CryptoError, match="does not match"):
        load_identity(tmp_path)


def test_sign_and_verify() -> None:
    identity = NodeIdentity.generate()
    signature = identity.sign(b"hello")
    verify_ed25519(identity.public_key_b64, signature, b"hello")
    with pytest.raises(SignatureError, match="bad signature"):
        verify_ed25519(identity.public_key_b64, signature, b"hellO")
    with pytest.raises(SignatureError, match="bad public key"):
        verify_ed25519("not base64!", signature, b"hello")


def test_decode_public_key_checks_length() -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        decode_public_key(base64.b64encode(b"short").decode())
