"""TLS contexts for the node's server and client sides, and the runtime mTLS trust set.

Trust for mTLS is never the system store: contexts trust exactly the PEMs they
are given (approved peers' CAs or pinned certificates). :class:`PeerTrust` lets
that set change at runtime — approve, revoke, certificate rotation — for new
connections without restarting the server. TLS 1.2 is the minimum; 1.3 is
negotiated whenever both sides have it. Certificate issuing lives in
:mod:`dtim.crypto.certs` and is re-exported here.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from dtim.crypto.certs import (
    NodeCertificates,
    certificate_fingerprint,
    certificate_hosts,
    issue_node_certificates,
    load_ca,
    load_certificate,
    rotate_node_certificate,
)
from dtim.crypto.keyfiles import read_secret
from dtim.errors import CryptoError

_IDENTIFY_CACHE_SIZE = 1024

__all__ = [
    "ClientCertMode",
    "NodeCertificates",
    "PeerTrust",
    "certificate_fingerprint",
    "certificate_hosts",
    "client_context",
    "issue_node_certificates",
    "load_ca",
    "load_certificate",
    "rotate_node_certificate",
    "server_context",
]


class ClientCertMode(StrEnum):
    """Whether a server asks for client certificates."""

    NONE = "none"
    OPTIONAL = "optional"
    """Verified when presented (a bad one fails the handshake); absence is left to the app."""
    REQUIRED = "required"


def server_context(
    cert_path: Path,
    key_path: Path,
    *,
    trusted_pems: Iterable[str] = (),
    client_cert: ClientCertMode = ClientCertMode.OPTIONAL,
) -> ssl.SSLContext:
    """A server context: TLS 1.2 minimum (1.3 preferred), our certificate, peers' CAs.

    Args:
        cert_path: PEM certificate (chain) to present.
        key_path: its private key (must be mode 0600).
        trusted_pems: CA or pinned leaf certificates that client certificates must chain to.
        client_cert: whether client certificates are requested.

    Raises:
        CryptoError: a file is missing/unusable, or a trusted PEM is not a certificate.
    """
    read_secret(key_path, "TLS key")  # permission check before OpenSSL reads it
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx)
    # Resumed sessions skip client-certificate verification; no tickets, so a
    # revoked peer cannot ride on a ticket issued before its revocation.
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    _load_chain(ctx, cert_path, key_path)
    ctx.verify_mode = {
        ClientCertMode.NONE: ssl.CERT_NONE,
        ClientCertMode.OPTIONAL: ssl.CERT_OPTIONAL,
        ClientCertMode.REQUIRED: ssl.CERT_REQUIRED,
    }[client_cert]
    _load_trust(ctx, trusted_pems)
    return ctx


def client_context(
    cert_path: Path | None,
    key_path: Path | None,
    *,
    trusted_pems: Iterable[str],
) -> ssl.SSLContext:
    """A client context presenting our certificate and trusting only ``trusted_pems``.

    Use one per peer (trusting that peer's CA only) so one approved peer's CA cannot
    vouch for another peer's host name. The system store is never loaded.

    Raises:
        CryptoError: nothing to trust, or a file/PEM is unusable.
    """
    pems = [pem for pem in trusted_pems if pem.strip()]
    if not pems:
        raise CryptoError("no trusted peer certificate or CA given; refusing to trust anything")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(ctx)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert_path is not None and key_path is not None:
        read_secret(key_path, "TLS key")
        _load_chain(ctx, cert_path, key_path)
    _load_trust(ctx, pems)
    return ctx


class PeerTrust:
    """The mTLS trust set (approved peers' CAs or certificates), replaceable at runtime.

    Give :meth:`listener_context` to the server once (uvicorn's
    ``ssl_context_factory``). Its SNI callback — which OpenSSL runs for every
    handshake, with or without a server name — switches the connection to the
    context built from the current trust set, so :meth:`set_peers` /
    :meth:`remove_peer` / :meth:`reload_certificate` apply to the next
    connection without a restart. :meth:`identify` maps a verified client
    certificate back to the peer that owns it, for per-request checks on
    connections opened before a revocation.
    """

    def __init__(
        self,
        cert_path: Path,
        key_path: Path,
        peers: Mapping[str, Sequence[str]] | None = None,
        *,
        client_cert: ClientCertMode = ClientCertMode.OPTIONAL,
    ) -> None:
        self._cert_path = cert_path
        self._key_path = key_path
        self._client_cert = client_cert
        self._lock = threading.Lock()
        self._peers: dict[str, tuple[x509.Certificate, ...]] = {}
        self._current: ssl.SSLContext | None = None
        self._listener: ssl.SSLContext | None = None
        self._identified: tuple[object, dict[bytes, str | None]] = (None, {})
        if peers:
            self._peers = {pid: _parse_pems(pems) for pid, pems in peers.items()}

    def set_peers(self, peers: Mapping[str, Sequence[str]]) -> None:
        """Replace the whole trust set: peer id -> CA/leaf PEMs.

        Raises:
            CryptoError: a PEM is not a certificate (the old set stays in force).
        """
        parsed = {pid: _parse_pems(pems) for pid, pems in peers.items()}
        with self._lock:
            self._peers = parsed
            self._rebuild()

    def set_peer(self, peer_id: str, pems: Sequence[str]) -> None:
        """Trust (or re-pin) one peer's CA/leaf PEMs."""
        parsed = _parse_pems(pems)
        with self._lock:
            self._peers = {**self._peers, peer_id: parsed}
            self._rebuild()

    def remove_peer(self, peer_id: str) -> None:
        """Stop trusting one peer (revocation); unknown ids are ignored."""
        with self._lock:
            self._peers = {pid: c for pid, c in self._peers.items() if pid != peer_id}
            self._rebuild()

    def reload_certificate(self) -> None:
        """Pick up a rotated node certificate for new connections."""
        with self._lock:
            self._rebuild()

    @property
    def peer_ids(self) -> frozenset[str]:
        """Ids of the peers currently trusted."""
        return frozenset(self._peers)

    def current_context(self) -> ssl.SSLContext:
        """The server context for the current trust set."""
        with self._lock:
            if self._current is None:
                self._rebuild()
            assert self._current is not None  # nosec B101  # set by _rebuild just above; narrows the type
            return self._current

    def listener_context(self) -> ssl.SSLContext:
        """The context to hand to the server once; it defers to :meth:`current_context`."""
        with self._lock:
            if self._current is None:
                self._rebuild()
            if self._listener is None:
                listener = self._build()
                listener.sni_callback = self._switch
                self._listener = listener
            return self._listener

    def identify(self, cert_der: bytes) -> str | None:
        """The trusted peer whose CA issued (or who pinned) this client certificate, if any.

        Answers are cached per certificate until the trust set next changes.
        """
        peers = self._peers
        cached_for, cache = self._identified
        if cached_for is not peers:
            cache = {}
            self._identified = (peers, cache)
        if cert_der in cache:
            return cache[cert_der]
        found = _owner(cert_der, peers)
        if len(cache) >= _IDENTIFY_CACHE_SIZE:
            cache.clear()
        cache[cert_der] = found
        return found

    def _switch(self, conn: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        conn.context = self._current or ctx

    def _rebuild(self) -> None:
        self._current = self._build()

    def _build(self) -> ssl.SSLContext:
        pems = [
            cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for anchors in self._peers.values()
            for cert in anchors
        ]
        return server_context(
            self._cert_path, self._key_path, trusted_pems=pems, client_cert=self._client_cert
        )


def _owner(cert_der: bytes, peers: Mapping[str, tuple[x509.Certificate, ...]]) -> str | None:
    try:
        leaf = x509.load_der_x509_certificate(cert_der)
    except ValueError:
        return None
    for peer_id, anchors in peers.items():
        for anchor in anchors:
            if anchor == leaf or _issued_by(leaf, anchor):
                return peer_id
    return None


def _harden(ctx: ssl.SSLContext) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    # A pinned peer leaf certificate is a trust anchor of its own.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN


def _load_chain(ctx: ssl.SSLContext, cert_path: Path, key_path: Path) -> None:
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except FileNotFoundError as exc:
        raise CryptoError(f"{exc.filename}: TLS certificate or key is missing") from None
    except (ssl.SSLError, OSError):
        raise CryptoError(
            f"{cert_path}: TLS certificate and key {key_path} are unreadable or do not match"
        ) from None


def _load_trust(ctx: ssl.SSLContext, pems: Iterable[str]) -> None:
    joined = "\n".join(pem.strip() for pem in pems if pem.strip())
    if not joined:
        return
    try:
        ctx.load_verify_locations(cadata=joined)
    except (ssl.SSLError, ValueError):
        raise CryptoError("a trusted peer PEM is not a certificate") from None


def _parse_pems(pems: Sequence[str]) -> tuple[x509.Certificate, ...]:
    certs: list[x509.Certificate] = []
    for pem in pems:
        try:
            certs.extend(x509.load_pem_x509_certificates(pem.encode("ascii")))
        except ValueError:
            raise CryptoError("a trusted peer PEM is not a certificate") from None
    return tuple(certs)


def _issued_by(leaf: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
