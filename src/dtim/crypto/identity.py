"""The node identity: an Ed25519 key pair whose public key names the node.

Files, in the node's ``keys/`` directory (mode 0700):

* ``identity.key`` — PKCS#8 PEM private key, mode 0600, refused if group/other-accessible;
* ``identity.pub`` — SubjectPublicKeyInfo PEM public key, mode 0644.

The node id is the lowercase hex SHA-256 of the raw 32-byte public key; the
fingerprint shown to people is OpenSSH's form, ``SHA256:`` + unpadded base64 of
the same digest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dtim.crypto import ed25519
from dtim.crypto.keyfiles import read_public, read_secret, write_public, write_secret
from dtim.errors import CryptoError, SignatureError

IDENTITY_KEY_FILE = "identity.key"
IDENTITY_PUB_FILE = "identity.pub"


def node_id_of(public_key_raw: bytes) -> str:
    """Node id of a raw 32-byte Ed25519 public key: hex SHA-256."""
    return hashlib.sha256(public_key_raw).hexdigest()


def fingerprint_of(public_key_raw: bytes) -> str:
    """SSH-style fingerprint of a raw public key: ``SHA256:<base64 without padding>``."""
    digest = hashlib.sha256(public_key_raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def public_key_bytes(public_key_b64: str) -> bytes:
    """The 32 raw bytes of a base64 Ed25519 public key (the form peers exchange).

    Raises:
        CryptoError: not base64 or not 32 bytes.
    """
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("public key is not valid base64") from None
    if len(raw) != 32:
        raise CryptoError(f"an Ed25519 public key has 32 bytes, got {len(raw)}")
    return raw


def decode_public_key(public_key_b64: str) -> Ed25519PublicKey:
    """Read a base64 raw Ed25519 public key as a key object.

    Raises:
        CryptoError: not base64 or not 32 bytes.
    """
    return Ed25519PublicKey.from_public_bytes(public_key_bytes(public_key_b64))


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify_ed25519(public_key_b64: str, signature: bytes, message: bytes) -> None:
    """Check an Ed25519 signature made by the holder of ``public_key_b64``.

    Raises:
        SignatureError: the key is unusable or the signature does not verify.
    """
    try:
        key = public_key_bytes(public_key_b64)
    except CryptoError as exc:
        raise SignatureError(f"bad public key: {exc}") from exc
    if not ed25519.verifies(key, signature, message):
        raise SignatureError("bad signature")


class NodeIdentity:
    """This node's Ed25519 key pair.

    Its ``repr`` shows only the node id: the private key never reaches a log.
    """

    __slots__ = ("_private", "_public_raw", "_secret")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self._public_raw = raw_public_key(private_key.public_key())
        seed = private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self._secret = ed25519.secret_from_seed(seed)

    @classmethod
    def generate(cls) -> NodeIdentity:
        """A fresh random identity (not saved)."""
        return cls(Ed25519PrivateKey.generate())

    @property
    def node_id(self) -> str:
        """Hex SHA-256 of the raw public key (64 characters)."""
        return node_id_of(self._public_raw)

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` fingerprint for people to compare out of band."""
        return fingerprint_of(self._public_raw)

    @property
    def public_key_raw(self) -> bytes:
        """The 32 raw public key bytes."""
        return self._public_raw

    @property
    def public_key_b64(self) -> str:
        """Standard base64 of the raw public key (``Peer.public_key`` form)."""
        return base64.b64encode(self._public_raw).decode("ascii")

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public key object."""
        return self._private.public_key()

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``message``."""
        return ed25519.sign(self._secret, message)

    def private_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM of the private key, for writing to a 0600 file only."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM of the public key."""
        return self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __repr__(self) -> str:
        return f"NodeIdentity(node_id={self.node_id!r})"


def save_identity(identity: NodeIdentity, keys_dir: Path) -> None:
    """Write ``identity.key`` (0600) and ``identity.pub`` into ``keys_dir`` (0700).

    Raises:
        CryptoError: the files cannot be written.
    """
    write_secret(keys_dir / IDENTITY_KEY_FILE, identity.private_pem())
    write_public(keys_dir / IDENTITY_PUB_FILE, identity.public_pem())


def create_identity(keys_dir: Path, *, overwrite: bool = False) -> NodeIdentity:
    """Generate and save a new node identity.

    Args:
        keys_dir: the node's ``keys/`` directory; created with mode 0700.
        overwrite: replace an existing identity (``dtim init --force``).

    Raises:
        CryptoError: an identity exists and ``overwrite`` is false, or writing failed.
    """
    if (keys_dir / IDENTITY_KEY_FILE).exists() and not overwrite:
        raise CryptoError(f"{keys_dir / IDENTITY_KEY_FILE}: an identity key already exists")
    identity = NodeIdentity.generate()
    save_identity(identity, keys_dir)
    return identity


def load_identity(keys_dir: Path) -> NodeIdentity:
    """Load the node identity from ``keys_dir``.

    Raises:
        CryptoError: the key file is missing, group/other-accessible, truncated or
            not an Ed25519 key, or ``identity.pub`` (when present) does not match it.
    """
    identity = load_private_key_file(keys_dir / IDENTITY_KEY_FILE)
    pub_path = keys_dir / IDENTITY_PUB_FILE
    if pub_path.exists():
        _check_public_matches(identity, read_public(pub_path, "identity public key"), pub_path)
    return identity


def load_private_key_file(path: Path) -> NodeIdentity:
    """Load one Ed25519 private key file (PKCS#8 PEM, mode 0600) as an identity.

    Raises:
        CryptoError: missing, group/other-accessible, truncated or not an Ed25519 key.
    """
    data = read_secret(path, "identity key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The parser's message could quote key material; ours says only what is wrong.
        raise CryptoError(f"{path}: identity key is truncated or not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CryptoError(f"{path}: identity key is not an Ed25519 key")
    return NodeIdentity(key)


def _check_public_matches(identity: NodeIdentity, pem: bytes, path: Path) -> None:
    try:
        public = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise CryptoError(f"{path}: identity public key is truncated or not PEM") from None
    if (
        not isinstance(public, Ed25519PublicKey)
        or raw_public_key(public) != identity.public_key_raw
    ):
        raise CryptoError(f"{path}: does not match {IDENTITY_KEY_FILE}")


def load_public_identity(keys_dir: Path) -> tuple[str, str]:
    """The node id and base64 public key from ``identity.pub``, without touching the private key.

    Raises:
        CryptoError: missing or unreadable.
    """
    path = keys_dir / IDENTITY_PUB_FILE
    try:
        public = serialization.load_pem_public_key(read_public(path, "identity public key"))
    except (ValueError, UnsupportedAlgorithm):
        raise CryptoError(f"{path}: identity public key is truncated or not PEM") from None
    if not isinstance(public, Ed25519PublicKey):
        raise CryptoError(f"{path}: identity public key is not an Ed25519 key")
    raw = raw_public_key(public)
    return node_id_of(raw), base64.b64encode(raw).decode("ascii")
