"""TLS material and mTLS over a real uvicorn server on 127.0.0.1 with real certificates."""

from __future__ import annotations

import ssl
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dtim.api.mtls import TLS_PEER_STATE_KEY, PeerCertificateGuard
from dtim.crypto.tls import (
    NodeCertificates,
    PeerTrust,
    certificate_fingerprint,
    certificate_hosts,
    client_context,
    issue_node_certificates,
    load_ca,
    load_certificate,
    rotate_node_certificate,
    server_context,
)
from dtim.errors import CryptoError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Node:
    name: str
    files: NodeCertificates

    @property
    def ca_pem(self) -> str:
        return self.files.ca_cert.read_text()

    def client(self, trust: Node) -> ssl.SSLContext:
        return client_context(self.files.cert, self.files.key, trusted_pems=[trust.ca_pem])


def make_node(tmp_path: Path, name: str) -> Node:
    files = issue_node_certificates(
        tmp_path / name / "certs", [f"{name}.example"], now=datetime.now(UTC), common_name=name
    )
    return Node(name, files)


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"peer": request.state._state.get(TLS_PEER_STATE_KEY)})


def make_app(trust: PeerTrust) -> PeerCertificateGuard:
    inner = Starlette(routes=[Route("/whoami", whoami), Route("/public", whoami)])
    return PeerCertificateGuard(inner, trust, exempt_paths=("/public",))


def test_issue_writes_ca_and_node_files_with_private_modes(tmp_path: Path) -> None:
    files = issue_node_certificates(tmp_path / "certs", ["node.example", "10.1.2.3"], now=NOW)
    assert stat.S_IMODE((tmp_path / "certs").stat().st_mode) == 0o700
    for secret in (files.ca_key, files.key):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    cert = load_certificate(files.cert)
    assert set(certificate_hosts(cert)) == {
        "node.example",
        "10.1.2.3",
        "localhost",
        "127.0.0.1",
        "::1",
    }
    ca, _ = load_ca(files)
    cert.verify_directly_issued_by(ca)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_rotation_reissues_from_the_same_ca(tmp_path: Path) -> None:
    files = issue_node_certificates(tmp_path, ["node.example"], now=NOW, common_name="n1")
    before = certificate_fingerprint(files.cert.read_bytes())
    ca_before = files.ca_cert.read_bytes()
    rotate_node_certificate(tmp_path, now=NOW)
    after = load_certificate(files.cert)
    assert certificate_fingerprint(files.cert.read_bytes()) != before
    assert files.ca_cert.read_bytes() == ca_before
    assert "node.example" in certificate_hosts(after)
    after.verify_directly_issued_by(load_ca(files)[0])


def test_context_builders_fail_closed(tmp_path: Path) -> None:
    node = make_node(tmp_path, "a")
    with pytest.raises(CryptoError, match="refusing to trust anything"):
        client_context(node.files.cert, node.files.key, trusted_pems=[])
    with pytest.raises(CryptoError, match="not a certificate"):
        client_context(None, None, trusted_pems=["-----BEGIN CERTIFICATE-----\nxx\n"])
    node.files.key.chmod(0o644)
    with pytest.raises(CryptoError, match="too open"):
        server_context(node.files.cert, node.files.key)
    ctx = client_context(None, None, trusted_pems=[node.ca_pem])
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] == 1  # nothing from the system store


def test_identify_maps_certificates_to_peers(tmp_path: Path) -> None:
    server, alice, bob = (make_node(tmp_path, n) for n in ("server", "alice", "bob"))
    leaf_pem = bob.files.cert.read_text()
    trust = PeerTrust(
        server.files.cert, server.files.key, {"alice": [alice.ca_pem], "bob": [leaf_pem]}
    )
    der = ssl.PEM_cert_to_DER_cert(alice.files.cert.read_text())
    assert trust.identify(der) == "alice"
    assert trust.identify(ssl.PEM_cert_to_DER_cert(leaf_pem)) == "bob"
    assert trust.identify(ssl.PEM_cert_to_DER_cert(server.files.cert.read_text())) is None
    assert trust.identify(b"garbage") is None
    trust.set_peers({"bob": [leaf_pem]})
    assert trust.identify(der) is None
    assert trust.peer_ids == {"bob"}
    with pytest.raises(CryptoError):
        trust.set_peer("x", ["not a pem"])
    assert trust.peer_ids == {"bob"}
