"""Key rotation: identity rollover statements, TLS re-issue, keyring, schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dtim.crypto.certs import (
    NodeCertificates,
    certificate_fingerprint,
    issue_node_certificates,
    load_ca,
    load_certificate,
)
from dtim.crypto.identity import NodeIdentity, create_identity, load_identity
from dtim.crypto.keyring import Keyring
from dtim.crypto.rotation import (
    RotationKind,
    due_rotations,
    last_rotation,
    load_rollovers,
    make_rollover,
    rotate,
    rotate_identity,
    verify_rollover,
)
from dtim.errors import SignatureError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_home(root: Path) -> tuple[Path, Path]:
    keys, certs = root / "keys", root / "certs"
    create_identity(keys)
    Keyring.create(keys, now=NOW)
    issue_node_certificates(certs, ["node.example"], now=NOW)
    return keys, certs


def test_identity_rollover_is_accepted_by_the_old_key(tmp_path: Path) -> None:
    keys, _ = make_home(tmp_path)
    old = load_identity(keys)
    statement = rotate_identity(keys, now=NOW)
    new = load_identity(keys)
    assert new.node_id != old.node_id
    assert (statement.old_node_id, statement.new_node_id) == (old.node_id, new.node_id)
    accepted = verify_rollover(statement.to_json(), old.public_key_b64)
    assert accepted.new_key == new.public_key_b64
    assert load_rollovers(keys) == [statement]
    second = rotate_identity(keys, now=NOW + timedelta(days=7))
    assert load_rollovers(keys) == [statement, second]
    assert (
        verify_rollover(second.to_json(), new.public_key_b64).new_key
        == load_identity(keys).public_key_b64
    )


def test_forged_rollovers_are_refused() -> None:
    old, new, thief = NodeIdentity.generate(), NodeIdentity.generate(), NodeIdentity.generate()
    good = make_rollover(old, new, now=NOW).to_json()
    with pytest.raises(SignatureError, match="not from the pinned key"):
        verify_rollover(good, thief.public_key_b64)
    forged = make_rollover(thief, new, now=NOW).to_json()
    with pytest.raises(SignatureError, match="bad signature by the old key"):
        verify_rollover({**forged, "old_key": old.public_key_b64}, old.public_key_b64)
    hijack = {**good, "new_key": thief.public_key_b64}
    with pytest.raises(SignatureError, match="bad signature by the old key"):
        verify_rollover(hijack, old.public_key_b64)
    unproven = make_rollover(old, new, now=NOW).to_json()
    unproven["new_signature"] = good["signature"]
    with pytest.raises(SignatureError, match="bad signature by the new key"):
        verify_rollover(unproven, old.public_key_b64)
    with pytest.raises(SignatureError, match="no 'at'"):
        verify_rollover({k: v for k, v in good.items() if k != "at"}, old.public_key_b64)
    with pytest.raises(SignatureError, match="wrong type"):
        verify_rollover({**good, "type": "x"}, old.public_key_b64)
    with pytest.raises(SignatureError, match="malformed"):
        verify_rollover({**good, "at": "yesterday"}, old.public_key_b64)
    with pytest.raises(SignatureError, match="does not change"):
        verify_rollover({**good, "new_key": old.public_key_b64}, old.public_key_b64)


def test_rotate_all_kinds(tmp_path: Path) -> None:
    keys, certs = make_home(tmp_path)
    before_cert = certificate_fingerprint((certs / "node.crt").read_bytes())
    ca = (certs / "ca.crt").read_bytes()
    done = rotate(list(RotationKind), keys_dir=keys, certs_dir=certs, now=NOW + timedelta(days=8))
    assert set(done) == {"identity", "tls", "logs"}
    assert done["tls"] == {
        "certificate_sha256": certificate_fingerprint((certs / "node.crt").read_bytes())
    }
    assert done["tls"]["certificate_sha256"] != before_cert
    assert (certs / "ca.crt").read_bytes() == ca
    load_certificate(certs / "node.crt").verify_directly_issued_by(
        load_ca(NodeCertificates.in_dir(certs))[0]
    )
    assert len(Keyring.load(keys).key_ids) == 2
    assert done["logs"] == {"key_id": f"{Keyring.load(keys).current_key_id:08x}"}


def test_schedule(tmp_path: Path) -> None:
    keys, certs = make_home(tmp_path)
    dirs = {"keys_dir": keys, "certs_dir": certs}
    assert last_rotation(RotationKind.LOGS, **dirs) == NOW
    assert last_rotation(RotationKind.TLS, **dirs) == NOW
    assert due_rotations(keys_dir=keys, certs_dir=certs, days=7, now=NOW + timedelta(days=6)) == []
    due = due_rotations(
        **dirs, days=7, now=NOW + timedelta(days=7), kinds=[RotationKind.TLS, RotationKind.LOGS]
    )
    assert due == [RotationKind.TLS, RotationKind.LOGS]
    assert (
        due_rotations(keys_dir=keys, certs_dir=certs, days=0, now=NOW + timedelta(days=100)) == []
    )
    rotate([RotationKind.LOGS], **dirs, now=NOW + timedelta(days=7))
    assert (
        due_rotations(
            keys_dir=keys,
            certs_dir=certs,
            days=7,
            now=NOW + timedelta(days=8),
            kinds=[RotationKind.LOGS],
        )
        == []
    )
    rotate_identity(keys, now=NOW + timedelta(days=3))
    assert last_rotation(RotationKind.IDENTITY, **dirs) == NOW + timedelta(days=3)
    assert (
        last_rotation(RotationKind.LOGS, keys_dir=tmp_path / "none", certs_dir=tmp_path / "none")
        is None
    )
    assert (
        last_rotation(RotationKind.TLS, keys_dir=tmp_path / "none", certs_dir=tmp_path / "none")
        is None
    )
    assert (
        last_rotation(
            RotationKind.IDENTITY, keys_dir=tmp_path / "none", certs_dir=tmp_path / "none"
        )
        is None
    )
