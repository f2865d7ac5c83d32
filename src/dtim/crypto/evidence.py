"""Sealing a sighting's evidence (log lines, local host/user names, paths) for the store.

The store keeps only the sealed bytes; only local admin views open them. The
sighting's id (or any stable context string) is bound as AAD, so a blob copied
onto another sighting's row does not open.
"""

from __future__ import annotations

import orjson

from dtim.crypto.keyring import Keyring
from dtim.errors import CryptoError
from dtim.model.sighting import Evidence

_AAD_PREFIX = b"dtim-evidence|"


def seal_evidence(keyring: Keyring, evidence: Evidence, *, context: str) -> bytes:
    """Encrypt ``evidence`` with the keyring's current key, bound to ``context``."""
    return keyring.seal(orjson.dumps(evidence.to_json()), _AAD_PREFIX + context.encode("utf-8"))


def open_evidence(keyring: Keyring, blob: bytes, *, context: str) -> Evidence:
    """Decrypt evidence sealed by :func:`seal_evidence` with the same ``context``.

    Raises:
        CryptoError: wrong context, tampered data, unknown key, or not evidence.
    """
    plaintext = keyring.open(blob, _AAD_PREFIX + context.encode("utf-8"))
    try:
        data = orjson.loads(plaintext)
    except orjson.JSONDecodeError:
        raise CryptoError("sealed evidence is not JSON") from None
    if not isinstance(data, dict):
        raise CryptoError("sealed evidence is not an object")

    def strings(name: str) -> tuple[str, ...]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CryptoError(f"sealed evidence field {name!r} is not a list of strings")
        return tuple(value)

    details = data.get("details", {})
    if not isinstance(details, dict):
        raise CryptoError("sealed evidence field 'details' is not an object")
    return Evidence(
        lines=strings("lines"),
        hosts=strings("hosts"),
        users=strings("users"),
        paths=strings("paths"),
        details=details,
    )
