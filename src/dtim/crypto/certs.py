"""The node CA and node certificates (X.509, ECDSA P-256), issued and rotated on disk.

Each node has its own small CA (``certs/ca.crt`` + ``ca.key``) that issues the
node certificate (``certs/node.crt`` + ``node.key``), used both as server
certificate and as mTLS client certificate. Peers pin each other's CA (or leaf
certificate), so re-issuing the node certificate from the same CA — rotation —
needs no new approval. Private keys are written 0600 in a 0700 directory.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dtim.crypto.keyfiles import (
    ensure_private_dir,
    read_public,
    read_secret,
    write_public,
    write_secret,
)
from dtim.errors import CryptoError

CA_CERT_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"
NODE_CERT_FILE = "node.crt"
NODE_KEY_FILE = "node.key"
LOOPBACK_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
CA_VALID_DAYS = 3650
NODE_CERT_VALID_DAYS = 90


@dataclass(frozen=True, slots=True)
class NodeCertificates:
    """Where a node's TLS files are."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, certs_dir: Path) -> NodeCertificates:
        """The standard file names inside ``certs_dir``."""
        return cls(
            certs_dir / CA_CERT_FILE,
            certs_dir / CA_KEY_FILE,
            certs_dir / NODE_CERT_FILE,
            certs_dir / NODE_KEY_FILE,
        )


def issue_node_certificates(
    certs_dir: Path,
    hosts: Iterable[str],
    *,
    now: datetime,
    common_name: str = "dtim-node",
    valid_days: int = NODE_CERT_VALID_DAYS,
) -> NodeCertificates:
    """Create the node CA if missing, then issue a fresh node key and certificate from it.

    Calling it again re-issues (rotates) the node certificate from the same CA.

    Args:
        certs_dir: the node's ``certs/`` directory (created 0700).
        hosts: DNS names / IP addresses the node is reached by (its endpoint host);
            ``localhost``, ``127.0.0.1`` and ``::1`` are always added.
        now: issue time (aware UTC).
        common_name: subject CN of the node certificate (the node id is a good choice).
        valid_days: node certificate lifetime.

    Raises:
        CryptoError: files cannot be written, or an existing CA is unusable.
    """
    ensure_private_dir(certs_dir)
    files = NodeCertificates.in_dir(certs_dir)
    if files.ca_cert.exists() and files.ca_key.exists():
        ca_cert, ca_key = load_ca(files)
    else:
        ca_cert, ca_key = _make_ca(common_name, now)
        write_secret(files.ca_key, _key_pem(ca_key))
        write_public(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _make_leaf(ca_cert, ca_key, key, common_name, _san_list(hosts), now, valid_days)
    write_secret(files.key, _key_pem(key))
    write_public(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    return files


def rotate_node_certificate(
    certs_dir: Path, *, now: datetime, valid_days: int = NODE_CERT_VALID_DAYS
) -> NodeCertificates:
    """Re-issue the node certificate from the existing CA, keeping its names.

    Raises:
        CryptoError: there is no CA or node certificate to rotate.
    """
    files = NodeCertificates.in_dir(certs_dir)
    current = load_certificate(files.cert)
    cn_attrs = current.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(cn_attrs[0].value) if cn_attrs else "dtim-node"
    hosts = certificate_hosts(current)
    if not files.ca_key.exists():
        raise CryptoError(f"{files.ca_key}: node CA key is missing; cannot re-issue")
    return issue_node_certificates(
        certs_dir, hosts, now=now, common_name=common_name, valid_days=valid_days
    )


def load_certificate(path: Path) -> x509.Certificate:
    """Read one PEM certificate.

    Raises:
        CryptoError: missing, truncated or not a certificate.
    """
    try:
        return x509.load_pem_x509_certificate(read_public(path, "certificate"))
    except ValueError:
        raise CryptoError(f"{path}: certificate is truncated or not PEM") from None


def load_ca(files: NodeCertificates) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The node CA certificate and key.

    Raises:
        CryptoError: missing, too-open, truncated or mismatched files.
    """
    cert = load_certificate(files.ca_cert)
    try:
        key = serialization.load_pem_private_key(read_secret(files.ca_key, "CA key"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CryptoError(f"{files.ca_key}: CA key is truncated or not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CryptoError(f"{files.ca_key}: does not match {files.ca_cert}")
    return cert, key


def certificate_hosts(cert: x509.Certificate) -> list[str]:
    """DNS names and IP addresses in a certificate's subjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names


def certificate_fingerprint(cert_pem_or_der: bytes) -> str:
    """Hex SHA-256 of a certificate's DER encoding (accepts PEM or DER).

    Raises:
        CryptoError: not a certificate.
    """
    return _parse_cert(cert_pem_or_der).fingerprint(hashes.SHA256()).hex()


def _parse_cert(data: bytes) -> x509.Certificate:
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CryptoError("not an X.509 certificate") from None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san_list(hosts: Iterable[str]) -> list[x509.GeneralName]:
    seen: list[str] = []
    for host in (*hosts, *LOOPBACK_NAMES):
        name = host.strip().strip("[]").lower()
        if name and name not in seen:
            seen.append(name)
    names: list[x509.GeneralName] = []
    for name in seen:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def _make_ca(
    common_name: str, now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"DTIM node CA {common_name[:32]}")])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    names: list[x509.GeneralName],
    now: datetime,
    valid_days: int,
) -> x509.Certificate:
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
