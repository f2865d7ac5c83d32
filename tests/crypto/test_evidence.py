"""Sealed sighting evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dtim.crypto.evidence import open_evidence, seal_evidence
from dtim.crypto.keyring import Keyring
from dtim.errors import CryptoError
from dtim.model.sighting import Evidence


def test_evidence_roundtrip_and_binding(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path, now=datetime(2026, 1, 1, tzinfo=UTC))
    evidence = Evidence(
        lines=("Failed password for root from 203.0.113.9",),
        hosts=("db01.internal",),
        users=("root",),
        paths=("/var/log/auth.log",),
        details={"port": 22},
    )
    blob = seal_evidence(keyring, evidence, context="sighting-1")
    assert b"db01.internal" not in blob
    assert open_evidence(keyring, blob, context="sighting-1") == evidence
    with pytest.raises(CryptoError):
        open_evidence(keyring, blob, context="sighting-2")
    keyring.rotate(now=datetime(2026, 2, 1, tzinfo=UTC))
    assert open_evidence(keyring, blob, context="sighting-1") == evidence


def test_not_evidence_is_refused(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path, now=datetime(2026, 1, 1, tzinfo=UTC))
    aad = b"dtim-evidence|c"
    with pytest.raises(CryptoError, match="not an object"):
        open_evidence(keyring, keyring.seal(b"[1]", aad), context="c")
    with pytest.raises(CryptoError, match="not JSON"):
        open_evidence(keyring, keyring.seal(b"{", aad), context="c")
    with pytest.raises(CryptoError, match="'lines'"):
        open_evidence(keyring, keyring.seal(b'{"lines": [1]}', aad), context="c")
    with pytest.raises(CryptoError, match="'details'"):
        open_evidence(keyring, keyring.seal(b'{"details": []}', aad), context="c")
