"""Who a node is: its self-signed ``GET /api/v1/node`` document, and fetching it on first contact.

The document carries the node id, its Ed25519 public key and fingerprint, its
endpoint, the gossip protocol version and its node CA certificate, signed by
the key itself (RFC 8785 body signature). Once a person compared the key's
fingerprint out of band, the CA certificate in it is authentic: approving the
peer pins it, and mutual TLS trusts exactly that.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpx
import orjson

from dtim.crypto.bodysig import sign_body, verify_body
from dtim.crypto.certs import certificate_fingerprint
from dtim.crypto.identity import (
    NodeIdentity,
    fingerprint_of,
    node_id_of,
    public_key_bytes,
)
from dtim.errors import CryptoError, PeerRejected, PeerUnreachable, ProtocolError, SignatureError
from dtim.model.indicator import JsonValue

PROTOCOL_VERSION = 1
NODE_PATH = "/api/v1/node"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What ``GET /api/v1/node`` says, after its self-signature checked out.

    Attributes:
        id: the node id (hex SHA-256 of the public key).
        public_key: base64 raw Ed25519 public key.
        fingerprint: ``SHA256:...`` of the key, for people to compare.
        endpoint: the URL the node says it is reached at.
        protocol_version: the gossip protocol version it speaks.
        ca_certificate: PEM of its node CA (pinned on approval for mTLS).
        ca_fingerprint: hex SHA-256 of that CA certificate.
        software: its software name and version.
    """

    id: str
    public_key: str
    fingerprint: str
    endpoint: str
    protocol_version: int
    ca_certificate: str
    ca_fingerprint: str
    software: str


def node_document(
    identity: NodeIdentity, *, endpoint: str, ca_pem: str, software: str
) -> dict[str, JsonValue]:
    """The signed ``GET /api/v1/node`` document of this node.

    The signature (RFC 8785 body signature by the identity) binds the CA
    certificate and the endpoint to the key a person compares by fingerprint.
    """
    body: dict[str, JsonValue] = {
        "id": identity.node_id,
        "public_key": identity.public_key_b64,
        "fingerprint": identity.fingerprint,
        "endpoint": endpoint,
        "protocol_version": PROTOCOL_VERSION,
        "ca_certificate": ca_pem,
        "software": software,
    }
    return sign_body(body, identity)


def read_node_document(document: object) -> NodeInfo:
    """Check a node document: fields, self-signature, id and CA certificate.

    Raises:
        ProtocolError: a field is missing or wrong, or the id does not match the key.
        PeerRejected: the self-signature does not verify.
    """
    if not isinstance(document, dict):
        raise ProtocolError("node document is not a JSON object")
    texts = {}
    for name in ("id", "public_key", "endpoint", "ca_certificate", "software"):
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise ProtocolError(f"node document field {name!r}: missing or not a string")
        texts[name] = value
    version = document.get("protocol_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProtocolError("node document field 'protocol_version': not an integer")
    try:
        key_raw = public_key_bytes(texts["public_key"])
        ca_fingerprint = certificate_fingerprint(texts["ca_certificate"].encode("ascii"))
    except (CryptoError, UnicodeEncodeError) as exc:
        raise ProtocolError(f"node document: {exc}") from exc
    try:
        verify_body(document, texts["public_key"])
    except SignatureError as exc:
        raise PeerRejected(f"node document: {exc.reason}") from exc
    if node_id_of(key_raw) != texts["id"]:
        raise ProtocolError("node document: the id is not the hash of the public key")
    return NodeInfo(
        id=texts["id"],
        public_key=texts["public_key"],
        fingerprint=fingerprint_of(key_raw),
        endpoint=texts["endpoint"],
        protocol_version=version,
        ca_certificate=texts["ca_certificate"],
        ca_fingerprint=ca_fingerprint,
        software=texts["software"],
    )


async def fetch_node_info(url: str, *, seconds: float) -> NodeInfo:
    """Learn who answers at ``url`` (trust on first use: a person compares the fingerprint).

    The TLS certificate is not checked here: there is nothing to check it
    against yet. The document is self-signed by the node's key, so once a
    person has compared the key's fingerprint out of band, the CA
    certificate in it is authentic and every later connection verifies
    against it.

    Raises:
        PeerUnreachable: no answer in time, or not HTTP.
        ProtocolError: not a valid node document.
        PeerRejected: the document's signature does not verify.
    """
    base = url.rstrip("/")
    if not base.startswith("https://"):
        raise ProtocolError(f"{url}: a peer endpoint must be an https:// URL")
    insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    try:
        async with httpx.AsyncClient(verify=insecure, timeout=seconds, trust_env=False) as client:
            response = await client.get(base + NODE_PATH)
    except httpx.HTTPError as exc:
        raise PeerUnreachable(f"{base}: {exc.__class__.__name__}: {exc}") from exc
    if response.status_code != 200:
        raise ProtocolError(f"{base}{NODE_PATH} answered {response.status_code}")
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"{base}{NODE_PATH}: not JSON") from exc
    return read_node_document(document)
