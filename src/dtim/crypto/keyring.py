"""The symmetric keyring: AES-256-GCM keys with ids, rotation, and every old key kept.

The keyring file (``keys/keyring``, mode 0600) is the master secret of the node's
data at rest: the audit log and sighting evidence are sealed with its current
key. Rotation adds a key and makes it current; old keys stay, so anything
written before is still readable — the key id travels beside each ciphertext.

Sealed blob layout (all integers big-endian)::

    version (1 byte, 0x01) | key id (4 bytes) | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)

The version and key id are authenticated with the caller's AAD, so a blob cannot
be relabelled with another key id or moved to another context unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import os
import secrets
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dtim.crypto.keyfiles import ensure_private_dir, read_secret, write_secret
from dtim.errors import CryptoError, ValidationError
from dtim.model.clock import iso, parse_time

KEYRING_FILE = "keyring"
_LOCK_FILE = ".keyring.lock"
_FORMAT = "dtim-keyring"
BLOB_VERSION = 1
_HEADER = struct.Struct(">BI")
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = _HEADER.size + NONCE_SIZE + TAG_SIZE
"""Bytes a sealed blob adds to its plaintext."""


@dataclass(frozen=True, slots=True)
class KeyringKey:
    """One AES-256 key: its id, when it was made, and the secret (never in repr)."""

    id: int
    created: datetime
    secret: bytes = field(repr=False)


class Keyring:
    """AES-256-GCM keys by id; the newest one seals, all of them open.

    Build it with :meth:`create` or :meth:`load`; the constructor does no I/O.
    """

    def __init__(self, path: Path, keys: Mapping[int, KeyringKey], current: int) -> None:
        if current not in keys:
            raise CryptoError(f"{path}: current key {current:08x} is not in the keyring")
        self._path = path
        self._keys = dict(keys)
        self._current = current
        self._ciphers: dict[int, AESGCM] = {}

    @classmethod
    def create(cls, keys_dir: Path, *, now: datetime) -> Keyring:
        """Make a keyring with one fresh key and save it (``keys_dir`` is created 0700).

        Raises:
            CryptoError: a keyring already exists there, or writing failed.
        """
        path = keys_dir / KEYRING_FILE
        ensure_private_dir(keys_dir)
        with _locked(keys_dir):
            if path.exists():
                raise CryptoError(f"{path}: a keyring already exists")
            key = _new_key(now, set())
            keyring = cls(path, {key.id: key}, key.id)
            keyring._save()
        return keyring

    @classmethod
    def load(cls, keys_dir: Path) -> Keyring:
        """Read the keyring from ``keys_dir``.

        Raises:
            CryptoError: missing, group/other-accessible, truncated or malformed.
        """
        path = keys_dir / KEYRING_FILE
        keys, current = _parse(path, read_secret(path, "keyring"))
        return cls(path, keys, current)

    @classmethod
    def load_or_create(cls, keys_dir: Path, *, now: datetime) -> Keyring:
        """Load the keyring, creating it first when there is none."""
        if (keys_dir / KEYRING_FILE).exists():
            return cls.load(keys_dir)
        return cls.create(keys_dir, now=now)

    @property
    def path(self) -> Path:
        """The keyring file."""
        return self._path

    @property
    def current_key_id(self) -> int:
        """Id of the key that seals new data."""
        return self._current

    @property
    def current_created(self) -> datetime:
        """When the current key was made (for the rotation schedule)."""
        return self._keys[self._current].created

    @property
    def key_ids(self) -> tuple[int, ...]:
        """Every key id held, oldest first."""
        return tuple(k.id for k in sorted(self._keys.values(), key=lambda k: k.created))

    def rotate(self, *, now: datetime) -> int:
        """Add a new key, make it current, save; return its id. Old keys stay.

        The file is re-read under a lock first, so a rotation made meanwhile by
        another process (``dtim keys rotate`` while the node runs) is kept.

        Raises:
            CryptoError: the keyring cannot be read back or written.
        """
        with _locked(self._path.parent):
            on_disk, _ = _parse(self._path, read_secret(self._path, "keyring"))
            merged = {**self._keys, **on_disk}
            key = _new_key(now, set(merged))
            merged[key.id] = key
            self._keys = merged
            self._current = key.id
            self._save()
        return key.id

    def reload(self) -> None:
        """Re-read the file, picking up keys another process added (and its current key).

        Raises:
            CryptoError: the file became unreadable; the keys in memory stay in use.
        """
        keys, current = _parse(self._path, read_secret(self._path, "keyring"))
        self._keys = {**self._keys, **keys}
        self._current = current

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Encrypt with the current key; ``aad`` must be given again to open."""
        header = _HEADER.pack(BLOB_VERSION, self._current)
        nonce = os.urandom(NONCE_SIZE)
        return header + nonce + self._cipher(self._current).encrypt(nonce, plaintext, header + aad)

    def open(self, blob: bytes, aad: bytes = b"") -> bytes:
        """Decrypt a blob made by :meth:`seal` with any key this keyring holds.

        Raises:
            CryptoError: malformed blob, unknown key id, or authentication failure
                (tampered data or wrong ``aad``).
        """
        if len(blob) < OVERHEAD:
            raise CryptoError("sealed data is truncated")
        version, key_id = _HEADER.unpack_from(blob)
        if version != BLOB_VERSION:
            raise CryptoError(f"sealed data has unknown format version {version}")
        if key_id not in self._keys:
            # Another process may have rotated since we loaded.
            self.reload()
            if key_id not in self._keys:
                raise CryptoError(f"sealed with key {key_id:08x}, which this keyring does not hold")
        nonce = blob[_HEADER.size : _HEADER.size + NONCE_SIZE]
        header = blob[: _HEADER.size]
        try:
            return self._cipher(key_id).decrypt(
                nonce, blob[_HEADER.size + NONCE_SIZE :], header + aad
            )
        except InvalidTag:
            raise CryptoError(
                "sealed data failed authentication (tampered or wrong context)"
            ) from None

    def __repr__(self) -> str:
        path = str(self._path)
        return f"Keyring(path={path!r}, keys={len(self._keys)}, current={self._current:08x})"

    def _cipher(self, key_id: int) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            cipher = self._ciphers[key_id] = AESGCM(self._keys[key_id].secret)
        return cipher

    def _save(self) -> None:
        document = {
            "format": _FORMAT,
            "version": 1,
            "current": self._current,
            "keys": [
                {
                    "id": k.id,
                    "created": iso(k.created),
                    "secret": base64.b64encode(k.secret).decode("ascii"),
                }
                for k in sorted(self._keys.values(), key=lambda k: k.created)
            ],
        }
        write_secret(self._path, orjson.dumps(document, option=orjson.OPT_INDENT_2))


def _new_key(now: datetime, taken: set[int]) -> KeyringKey:
    # Random ids: two processes rotating at once can never mint the same id.
    while True:
        key_id = secrets.randbits(32)
        if key_id and key_id not in taken:
            return KeyringKey(key_id, now, AESGCM.generate_key(bit_length=256))


@contextmanager
def _locked(keys_dir: Path) -> Iterator[None]:
    fd = os.open(keys_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _parse(path: Path, data: bytes) -> tuple[dict[int, KeyringKey], int]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise CryptoError(f"{path}: keyring is truncated or not JSON") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise CryptoError(f"{path}: not a DTIM keyring")
    raw_keys = document.get("keys")
    current = document.get("current")
    if not isinstance(raw_keys, list) or not raw_keys or not isinstance(current, int):
        raise CryptoError(f"{path}: keyring has no keys or no current key")
    keys: dict[int, KeyringKey] = {}
    for index, entry in enumerate(raw_keys):
        try:
            key_id = entry["id"]
            secret = base64.b64decode(entry["secret"], validate=True)
            created = parse_time(entry["created"], "created")
        except (KeyError, TypeError, binascii.Error, ValueError, ValidationError):
            raise CryptoError(f"{path}: key #{index + 1} is malformed") from None
        if not isinstance(key_id, int) or len(secret) != 32:
            raise CryptoError(f"{path}: key #{index + 1} is not a 256-bit key with an id")
        keys[key_id] = KeyringKey(key_id, created, secret)
    if current not in keys:
        raise CryptoError(f"{path}: current key {current} is not in the keyring")
    return keys, current
