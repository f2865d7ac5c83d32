"""No private key or secret reaches an error message, a repr, a log record or the terminal."""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dtim.crypto.auditlog import AuditLog
from dtim.crypto.certs import issue_node_certificates
from dtim.crypto.identity import create_identity, load_identity
from dtim.crypto.keyring import KEYRING_FILE, Keyring
from dtim.crypto.tls import client_context, server_context
from dtim.errors import DTIMError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def secrets_in(root: Path) -> list[str]:
    found: list[str] = []
    for pem in (
        root / "keys" / "identity.key",
        root / "certs" / "node.key",
        root / "certs" / "ca.key",
    ):
        found += [
            line for line in pem.read_text().splitlines() if "-----" not in line and len(line) > 16
        ]
    text = (root / "keys" / KEYRING_FILE).read_text()
    found += [part.split('"')[0] for part in text.split('"secret": "')[1:]]
    return found


def test_error_paths_and_reprs_leak_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    keys, certs = tmp_path / "keys", tmp_path / "certs"
    identity = create_identity(keys)
    keyring = Keyring.create(keys, now=NOW)
    files = issue_node_certificates(certs, ["node.example"], now=NOW)
    secrets = secrets_in(tmp_path)
    raw_private = identity.private_pem()
    keyring_bytes = (keys / KEYRING_FILE).read_bytes()
    key_pem = files.key.read_bytes()
    outputs: list[str] = [
        repr(identity),
        repr(keyring),
        repr(keyring._keys),
        str(identity.fingerprint),
    ]

    def attempt(action: Callable[[], object]) -> None:
        try:
            action()
        except DTIMError as exc:
            outputs.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])
        else:
            pytest.fail("expected an error")

    # Identity: truncated, corrupted, too open.
    (keys / "identity.key").write_bytes(raw_private[:-40])
    attempt(lambda: load_identity(keys))
    (keys / "identity.key").write_bytes(raw_private.replace(b"M", b"!", 1))
    attempt(lambda: load_identity(keys))
    (keys / "identity.key").write_bytes(raw_private)
    (keys / "identity.key").chmod(0o644)
    attempt(lambda: load_identity(keys))
    # Keyring: truncated in the middle of a secret, then a secret of the wrong size.
    (keys / KEYRING_FILE).write_bytes(keyring_bytes[: keyring_bytes.index(b'"secret"') + 30])
    attempt(lambda: Keyring.load(keys))
    (keys / KEYRING_FILE).write_bytes(keyring_bytes.replace(b'"secret": "', b'"secret": "AAAA', 1))
    attempt(lambda: Keyring.load(keys))
    # TLS: a key that does not match, a truncated key, a PEM key offered as trust.
    files.key.write_bytes(key_pem[:-50])
    attempt(lambda: server_context(files.cert, files.key))
    attempt(lambda: client_context(None, None, trusted_pems=[key_pem.decode()]))
    # Sealed data: tampered, wrong context.
    attempt(lambda: keyring.open(keyring.seal(b"payload", b"a"), b"b"))
    AuditLog(tmp_path / "logs", keyring).append({"event": "node_started"})

    out, err = capfd.readouterr()
    outputs += [out, err, caplog.text]
    assert len(outputs) > 10
    for text in outputs:
        assert "PRIVATE KEY" not in text
        for secret in secrets:
            assert secret not in text, "a secret reached an error message or log"
        assert base64.b64encode(identity._private.private_bytes_raw()).decode() not in text
