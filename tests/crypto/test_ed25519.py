"""libsodium signatures agree with OpenSSL's (cryptography) and refuse what they must."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from dtim.crypto import ed25519


def _pair() -> tuple[Ed25519PrivateKey, bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return key, ed25519.secret_from_seed(seed), public


KEY, SECRET, PUBLIC = _pair()


@given(st.binary(max_size=2048))
def test_signatures_are_openssls_and_verify_both_ways(message: bytes) -> None:
    signature = ed25519.sign(SECRET, message)
    assert signature == KEY.sign(message)
    KEY.public_key().verify(signature, message)  # raises when OpenSSL disagrees
    assert ed25519.verifies(PUBLIC, signature, message)


@given(st.binary(min_size=1, max_size=512), st.integers(min_value=0, max_value=63))
def test_a_changed_message_or_signature_is_refused(message: bytes, flip: int) -> None:
    signature = ed25519.sign(SECRET, message)
    assert not ed25519.verifies(PUBLIC, signature, message + b"x")
    damaged = bytearray(signature)
    damaged[flip] ^= 0x01
    assert not ed25519.verifies(PUBLIC, bytes(damaged), message)


def test_wrong_sizes_and_foreign_keys_are_refused() -> None:
    signature = ed25519.sign(SECRET, b"m")
    assert not ed25519.verifies(PUBLIC, signature[:63], b"m")
    assert not ed25519.verifies(PUBLIC[:31], signature, b"m")
    assert not ed25519.verifies(bytes(32), signature, b"m")  # small-order key
    assert not ed25519.verifies(_pair()[2], signature, b"m")
