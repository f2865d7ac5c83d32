"""Passphrase-encrypted files (backups): scrypt KDF, AES-256-GCM, authenticated header."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from dtim.errors import CryptoError

MAGIC = b"DTIMSEAL1"
_SALT = 16
_NONCE = 12
# scrypt cost: about 0.1 s and 64 MiB per derivation; a backup passphrase is guessed offline.
_N, _R, _P = 2**16, 8, 1
MIN_PASSPHRASE = 12


def _key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=_N, r=_R, p=_P).derive(passphrase.encode("utf-8"))


def seal_with_passphrase(data: bytes, passphrase: str) -> bytes:
    """Encrypt ``data``; the output carries the salt and nonce.

    Raises:
        CryptoError: the passphrase is too short.
    """
    if len(passphrase) < MIN_PASSPHRASE:
        raise CryptoError(f"passphrase too short: at least {MIN_PASSPHRASE} characters")
    salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
    header = MAGIC + salt + nonce
    return header + AESGCM(_key(passphrase, salt)).encrypt(nonce, data, header)


def open_with_passphrase(blob: bytes, passphrase: str) -> bytes:
    """Decrypt what :func:`seal_with_passphrase` wrote.

    Raises:
        CryptoError: not a sealed file, wrong passphrase, or tampered.
    """
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _SALT + _NONCE + 16:
        raise CryptoError("not a DTIM sealed file")
    header_end = len(MAGIC) + _SALT + _NONCE
    salt = blob[len(MAGIC) : len(MAGIC) + _SALT]
    nonce = blob[len(MAGIC) + _SALT : header_end]
    try:
        return AESGCM(_key(passphrase, salt)).decrypt(nonce, blob[header_end:], blob[:header_end])
    except InvalidTag:
        raise CryptoError("wrong passphrase, or the file was modified") from None
