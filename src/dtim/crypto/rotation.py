"""Key rotation: identity rollover statements, TLS re-issue, keyring rotation, and the schedule.

* **Identity**: a new Ed25519 key replaces the old one. The rollover statement
  (old key, new key, time) is signed by the old key — so peers that pinned the
  old key accept the new one without a new manual approval — and also by the new
  key, proving its holder has it. Statements accumulate in ``keys/rollover.json``
  for the node to present to peers. The old private key moves to
  ``keys/retired/<old node id>.key`` (0600): peers that have not yet taken the
  statement still know the node by it, and the statement must reach them in a
  request signed with it. The node deletes it once every peer has the new key.
* **TLS**: the node certificate is re-issued from the node CA (which peers pin).
* **Logs**: the keyring gains a key; every old key stays.

A kind is due when its last rotation is ``key_rotation_days`` or more ago
(``0`` turns the schedule off); the node checks on start and hourly.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import orjson
import rfc8785

from dtim.crypto.certs import (
    NODE_CERT_FILE,
    certificate_fingerprint,
    load_certificate,
    rotate_node_certificate,
)
from dtim.crypto.identity import (
    IDENTITY_KEY_FILE,
    NodeIdentity,
    decode_public_key,
    load_identity,
    load_private_key_file,
    node_id_of,
    save_identity,
    verify_ed25519,
)
from dtim.crypto.keyfiles import read_public, write_public, write_secret
from dtim.crypto.keyring import KEYRING_FILE, Keyring
from dtim.errors import CryptoError, SignatureError, ValidationError
from dtim.model.clock import iso, parse_time
from dtim.model.indicator import JsonValue

ROLLOVER_FILE = "rollover.json"
RETIRED_DIR = "retired"
"""Under ``keys/``: old identity keys still needed to reach peers that lag behind."""
ROLLOVER_TYPE = "dtim-key-rollover"
_CERT_BACKDATE = timedelta(minutes=5)  # certs.py backdates not_valid_before by this much


class RotationKind(StrEnum):
    """What can be rotated."""

    IDENTITY = "identity"
    TLS = "tls"
    LOGS = "logs"


@dataclass(frozen=True, slots=True)
class RolloverStatement:
    """``old_key`` hands over to ``new_key`` at ``at``; signed by both keys."""

    old_key: str
    new_key: str
    at: datetime
    signature: str
    """Base64 Ed25519 signature by the old key over :meth:`signed_bytes`."""
    new_signature: str
    """Base64 Ed25519 signature by the new key over the same bytes."""

    @property
    def old_node_id(self) -> str:
        """Node id of the old key."""
        return node_id_of(base64.b64decode(self.old_key))

    @property
    def new_node_id(self) -> str:
        """Node id of the new key."""
        return node_id_of(base64.b64decode(self.new_key))

    def signed_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of the statement without its signatures."""
        return _canonical(self.old_key, self.new_key, iso(self.at))

    def to_json(self) -> dict[str, JsonValue]:
        """The statement as sent to peers."""
        return {
            "type": ROLLOVER_TYPE,
            "old_key": self.old_key,
            "new_key": self.new_key,
            "at": iso(self.at),
            "signature": self.signature,
            "new_signature": self.new_signature,
        }


def _canonical(old_key: str, new_key: str, at: str) -> bytes:
    return rfc8785.dumps({"type": ROLLOVER_TYPE, "old_key": old_key, "new_key": new_key, "at": at})


def make_rollover(old: NodeIdentity, new: NodeIdentity, *, now: datetime) -> RolloverStatement:
    """Sign a rollover from ``old`` to ``new`` (millisecond precision, like every DTIM time)."""
    at = parse_time(iso(now))
    message = _canonical(old.public_key_b64, new.public_key_b64, iso(at))
    return RolloverStatement(
        old_key=old.public_key_b64,
        new_key=new.public_key_b64,
        at=at,
        signature=base64.b64encode(old.sign(message)).decode("ascii"),
        new_signature=base64.b64encode(new.sign(message)).decode("ascii"),
    )


def verify_rollover(statement: Mapping[str, JsonValue], old_public_key: str) -> RolloverStatement:
    """Check a rollover statement against the key we pinned for that peer.

    Returns the statement; pin ``new_key`` (and keep the peer's approval).

    Raises:
        SignatureError: malformed, not from ``old_public_key``, or a signature fails.
    """
    fields = {}
    for name in ("type", "old_key", "new_key", "at", "signature", "new_signature"):
        value = statement.get(name)
        if not isinstance(value, str) or not value:
            raise SignatureError(f"malformed rollover statement: no {name!r}")
        fields[name] = value
    if fields["type"] != ROLLOVER_TYPE:
        raise SignatureError("malformed rollover statement: wrong type")
    if fields["old_key"] != old_public_key:
        raise SignatureError("rollover statement is not from the pinned key")
    if fields["new_key"] == fields["old_key"]:
        raise SignatureError("malformed rollover statement: the key does not change")
    try:
        at = parse_time(fields["at"], "at")
        decode_public_key(fields["new_key"])
        old_sig = base64.b64decode(fields["signature"], validate=True)
        new_sig = base64.b64decode(fields["new_signature"], validate=True)
    except (ValidationError, CryptoError, binascii.Error, ValueError):
        raise SignatureError("malformed rollover statement") from None
    message = _canonical(fields["old_key"], fields["new_key"], fields["at"])
    try:
        verify_ed25519(old_public_key, old_sig, message)
    except SignatureError:
        raise SignatureError("rollover statement: bad signature by the old key") from None
    try:
        verify_ed25519(fields["new_key"], new_sig, message)
    except SignatureError:
        raise SignatureError("rollover statement: bad signature by the new key") from None
    return RolloverStatement(
        fields["old_key"], fields["new_key"], at, fields["signature"], fields["new_signature"]
    )


def load_rollovers(keys_dir: Path) -> list[RolloverStatement]:
    """This node's own rollover statements, oldest first (empty when it never rotated).

    Raises:
        CryptoError: the file is unreadable or malformed.
    """
    path = keys_dir / ROLLOVER_FILE
    if not path.exists():
        return []
    try:
        entries = orjson.loads(read_public(path, "rollover statements"))
    except orjson.JSONDecodeError:
        raise CryptoError(f"{path}: rollover statements are not JSON") from None
    if not isinstance(entries, list):
        raise CryptoError(f"{path}: expected a list of rollover statements")
    statements = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("old_key"), str):
            raise CryptoError(f"{path}: malformed rollover statement")
        try:
            statements.append(verify_rollover(entry, entry["old_key"]))
        except SignatureError as exc:
            raise CryptoError(f"{path}: {exc.reason}") from None
    return statements


def first_node_id(keys_dir: Path) -> str:
    """The node id before any rollover: the same for the life of the home (keys locks by node).

    Raises:
        CryptoError: the rollover statements or the identity key are unusable.
    """
    rollovers = load_rollovers(keys_dir)
    if rollovers:
        return rollovers[0].old_node_id
    return load_identity(keys_dir).node_id


def rotate_identity(keys_dir: Path, *, now: datetime) -> RolloverStatement:
    """Replace the identity key with a new one; record and return the rollover statement.

    Raises:
        CryptoError: the current identity cannot be loaded or the files cannot be written.
    """
    old = load_identity(keys_dir)
    new = NodeIdentity.generate()
    statement = make_rollover(old, new, now=now)
    history = [s.to_json() for s in load_rollovers(keys_dir)] + [statement.to_json()]
    # Statement and retired key first: if we crash before the key is replaced, the
    # old key still works and the unused statement is harmless; the reverse would
    # strand peers.
    write_secret(retired_key_path(keys_dir, old.node_id), old.private_pem())
    write_public(keys_dir / ROLLOVER_FILE, orjson.dumps(history, option=orjson.OPT_INDENT_2))
    save_identity(new, keys_dir)
    return statement


def retired_key_path(keys_dir: Path, node_id: str) -> Path:
    """Where the retired identity key with this node id is kept."""
    return keys_dir / RETIRED_DIR / f"{node_id}.key"


def load_retired(keys_dir: Path) -> dict[str, NodeIdentity]:
    """The retired identity keys still kept, by node id.

    Raises:
        CryptoError: a key file is unreadable, too open, or not named after its key.
    """
    directory = keys_dir / RETIRED_DIR
    if not directory.is_dir():
        return {}
    found: dict[str, NodeIdentity] = {}
    for path in sorted(directory.glob("*.key")):
        identity = load_private_key_file(path)
        if identity.node_id != path.stem:
            raise CryptoError(f"{path}: the key in the file is {identity.node_id[:16]}")
        found[identity.node_id] = identity
    return found


def drop_retired(keys_dir: Path, node_id: str) -> bool:
    """Delete a retired identity key no peer needs any more; True when a file was removed.

    Raises:
        CryptoError: the file exists but cannot be removed.
    """
    path = retired_key_path(keys_dir, node_id)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CryptoError(f"{path}: cannot remove retired key: {exc.strerror}") from exc
    return True


def rotate_tls(certs_dir: Path, *, now: datetime) -> str:
    """Re-issue the node certificate from the node CA; returns its SHA-256 fingerprint."""
    files = rotate_node_certificate(certs_dir, now=now)
    return certificate_fingerprint(files.cert.read_bytes())


def rotate_log_key(keys_dir: Path, *, now: datetime) -> int:
    """Add a new current key to the keyring (creating the keyring if needed); returns its id."""
    if not (keys_dir / KEYRING_FILE).exists():
        return Keyring.create(keys_dir, now=now).current_key_id
    return Keyring.load(keys_dir).rotate(now=now)


def last_rotation(kind: RotationKind, *, keys_dir: Path, certs_dir: Path) -> datetime | None:
    """When ``kind`` was last rotated (or created); None when its files are missing.

    Raises:
        CryptoError: the files exist but cannot be read.
    """
    if kind is RotationKind.LOGS:
        if not (keys_dir / KEYRING_FILE).exists():
            return None
        return Keyring.load(keys_dir).current_created
    if kind is RotationKind.TLS:
        if not (certs_dir / NODE_CERT_FILE).exists():
            return None
        cert = load_certificate(certs_dir / NODE_CERT_FILE)
        return cert.not_valid_before_utc + _CERT_BACKDATE
    rollovers = load_rollovers(keys_dir)
    if rollovers:
        return rollovers[-1].at
    key = keys_dir / IDENTITY_KEY_FILE
    if not key.exists():
        return None
    return datetime.fromtimestamp(key.stat().st_mtime, UTC)


def due_rotations(
    *,
    keys_dir: Path,
    certs_dir: Path,
    days: int,
    now: datetime,
    kinds: Iterable[RotationKind] = tuple(RotationKind),
) -> list[RotationKind]:
    """The kinds whose last rotation is ``days`` or more before ``now`` (none if ``days <= 0``)."""
    if days <= 0:
        return []
    limit = timedelta(days=days)
    due = []
    for kind in kinds:
        last = last_rotation(kind, keys_dir=keys_dir, certs_dir=certs_dir)
        if last is not None and now - last >= limit:
            due.append(kind)
    return due


def rotate(
    kinds: Iterable[RotationKind], *, keys_dir: Path, certs_dir: Path, now: datetime
) -> dict[str, JsonValue]:
    """Rotate each of ``kinds``; returns what changed (new ids, no secrets), per kind.

    Raises:
        CryptoError: a rotation failed (the ones before it are done).
    """
    done: dict[str, JsonValue] = {}
    for kind in kinds:
        if kind is RotationKind.IDENTITY:
            statement = rotate_identity(keys_dir, now=now)
            done[kind.value] = {
                "old_node_id": statement.old_node_id,
                "new_node_id": statement.new_node_id,
            }
        elif kind is RotationKind.TLS:
            done[kind.value] = {"certificate_sha256": rotate_tls(certs_dir, now=now)}
        else:
            done[kind.value] = {"key_id": f"{rotate_log_key(keys_dir, now=now):08x}"}
    return done
