"""Ed25519 signing and verification on raw keys, through libsodium (PyNaCl).

Every signed request and response pays one verification and one signature, so
they run in libsodium, whose verification takes about half the time of
OpenSSL's on the same machine (74 us against 140 us). Key files are still read
and written with ``cryptography`` (PKCS#8 PEM); Ed25519 is deterministic, so
both libraries produce the same signature bytes. libsodium also refuses
small-order and non-canonical public keys, which no honest node has.
"""

from __future__ import annotations

from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


def secret_from_seed(seed: bytes) -> bytes:
    """libsodium's 64-byte secret key (seed and public key) for a 32-byte private seed."""
    return crypto_sign_seed_keypair(seed)[1]


def sign(secret: bytes, message: bytes) -> bytes:
    """The 64-byte signature of ``message`` with a :func:`secret_from_seed` key."""
    return crypto_sign(message, secret)[:SIGNATURE_BYTES]


def verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is the raw ``public_key``'s signature of ``message``."""
    if len(signature) != SIGNATURE_BYTES or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public_key)
    except BadSignatureError:
        return False
    return True
