"""The encrypted audit log: security events, one file per UTC day, AES-256-GCM per record.

File ``<dir>/audit-YYYY-MM-DD.log``; each record is one frame::

    magic "DTA1" (4 bytes) | length of the sealed blob (4 bytes, big-endian) | sealed blob

where the sealed blob is :meth:`Keyring.seal` output (key id + nonce + ciphertext
+ tag) of the JSON event, with the file's day as AAD (a record cannot be moved to
another day's file unnoticed). Each frame is written with a single ``write`` on
an ``O_APPEND`` descriptor. A record torn by a crash fails its length or its tag;
the reader skips it and resynchronises on the next magic, so one bad record
never hides the records after it.

What belongs here (see :class:`AuditEvent`): start/stop, peers added / approved /
rejected / revoked, rejected requests and why, key rotations, and indicators
shared (ids and peer ids, never contents). Never secrets.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

import orjson

from dtim.crypto.keyfiles import ensure_private_dir
from dtim.crypto.keyring import OVERHEAD, Keyring
from dtim.errors import CryptoError
from dtim.model.clock import Clock, SystemClock, utc
from dtim.model.indicator import JsonObject, JsonValue

MAGIC = b"DTA1"
_LENGTH = struct.Struct(">I")
_FRAME_HEADER = len(MAGIC) + _LENGTH.size
MAX_RECORD_BYTES = 1 << 20
"""Largest sealed record accepted; a longer length field means damage."""
_FILE_RE = re.compile(r"^audit-(\d{4}-\d{2}-\d{2})\.log$")


class AuditEvent(StrEnum):
    """Kinds of audit records (the ``event`` field)."""

    NODE_STARTED = "node_started"
    NODE_STOPPED = "node_stopped"
    PEER_ADDED = "peer_added"
    PEER_APPROVED = "peer_approved"
    PEER_REJECTED = "peer_rejected"
    PEER_REVOKED = "peer_revoked"
    REQUEST_REJECTED = "request_rejected"
    KEY_ROTATED = "key_rotated"
    INDICATORS_SHARED = "indicators_shared"


@dataclass(frozen=True, slots=True)
class AuditDay:
    """What one day's file held.

    Attributes:
        records: every record that decrypted, in file order.
        damaged: how many damaged stretches were skipped (torn tail included).
        torn_tail: whether the file ends inside a record (a crash mid-write).
    """

    records: tuple[JsonObject, ...]
    damaged: int
    torn_tail: bool


def log_file(directory: Path, day: date) -> Path:
    """Path of the audit file for ``day``."""
    return directory / f"audit-{day.isoformat()}.log"


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z`` (same text as ``model.clock.iso``, faster)."""
    return utc(moment).isoformat(timespec="milliseconds")[:23] + "Z"


def _aad(day: date) -> bytes:
    return b"dtim-audit|" + day.isoformat().encode("ascii")


class AuditLog:
    """Append-only encrypted audit log in ``directory`` (created 0700 on first write).

    ``append`` is synchronous on purpose: one small ``write`` per record, like the
    logging module, cheap enough for the event loop. The constructor does no I/O.
    """

    def __init__(self, directory: Path, keyring: Keyring, clock: Clock | None = None) -> None:
        self._dir = directory
        self._keyring = keyring
        self._clock = clock or SystemClock()
        self._fd: int | None = None
        self._fd_day: date | None = None
        self._day_aad = b""

    @property
    def directory(self) -> Path:
        """Where the daily files are."""
        return self._dir

    def append(self, event: Mapping[str, JsonValue]) -> None:
        """Encrypt and append one event; ``at`` (UTC, RFC 3339) is added when absent.

        Args:
            event: JSON-able mapping with a string ``event`` field (an :class:`AuditEvent`).

        Raises:
            CryptoError: ``event`` is missing or the record cannot be written.
        """
        kind = event.get("event")
        if not isinstance(kind, str) or not kind:
            raise CryptoError("an audit record needs an 'event' name")
        now = utc(self._clock.now())
        day = now.date()
        fd = self._fd if self._fd is not None and day == self._fd_day else self._open(day)
        try:
            plaintext = orjson.dumps({"at": timestamp(now), **event})
        except TypeError as exc:
            raise CryptoError(f"audit record {kind!r} is not JSON-serialisable: {exc}") from None
        sealed = self._keyring.seal(plaintext, self._day_aad)
        frame = b"".join((MAGIC, _LENGTH.pack(len(sealed)), sealed))
        try:
            written = os.write(fd, frame)
        except OSError as exc:
            raise CryptoError(f"{log_file(self._dir, day)}: cannot append: {exc.strerror}") from exc
        if written != len(frame):
            # A short write on a regular file means the disk is full; the reader
            # will skip the partial frame, but the caller must know.
            raise CryptoError(f"{log_file(self._dir, day)}: short write (disk full?)")

    def read(self, day: date) -> list[JsonObject]:
        """Every intact record of ``day`` (empty when there is no file).

        Raises:
            CryptoError: the file exists but cannot be read.
        """
        return list(self.scan(day).records)

    def scan(self, day: date) -> AuditDay:
        """Read ``day`` and say how much was damaged.

        Raises:
            CryptoError: the file exists but cannot be read.
        """
        path = log_file(self._dir, day)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return AuditDay((), 0, False)
        except OSError as exc:
            raise CryptoError(f"{path}: cannot read audit log: {exc.strerror}") from exc
        return self._parse(data, _aad(day))

    def days(self) -> list[date]:
        """Days that have a file, oldest first."""
        if not self._dir.is_dir():
            return []
        found = []
        for entry in self._dir.iterdir():
            match = _FILE_RE.match(entry.name)
            if match:
                found.append(date.fromisoformat(match.group(1)))
        return sorted(found)

    def close(self) -> None:
        """Close the open day file (appending reopens it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._fd_day = None

    def _open(self, day: date) -> int:
        self.close()
        ensure_private_dir(self._dir)
        path = log_file(self._dir, day)
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CryptoError(f"{path}: cannot open audit log: {exc.strerror}") from exc
        self._fd_day = day
        self._day_aad = _aad(day)
        return self._fd

    def _parse(self, data: bytes, aad: bytes) -> AuditDay:
        records: list[JsonObject] = []
        damaged = 0
        torn = False
        pos = 0
        size = len(data)
        while pos < size:
            record, end = self._frame_at(data, pos, aad)
            inner = -1 if record is None else self._frame_inside(data, pos, end, aad)
            if record is not None and inner < 0:
                records.append(record)
                pos = end
                continue
            if inner >= 0:
                # A torn record whose missing bytes were made up by the start of the next
                # one, and still authenticated (a 1 in 256 chance when only the tag's last
                # byte is missing): the intact record inside it wins.
                damaged += 1
                pos = inner
                continue
            damaged += 1
            following = data.find(MAGIC, pos + 1)
            if following < 0:
                torn = True
                break
            pos = following
        return AuditDay(tuple(records), damaged, torn)

    def _frame_inside(self, data: bytes, start: int, end: int, aad: bytes) -> int:
        """Where an intact frame begins inside the frame at ``start:end``, or -1."""
        # A frame that starts inside may end after ``end``: its magic may cross it.
        limit = end + len(MAGIC) - 1
        inner = data.find(MAGIC, start + 1, limit)
        while inner >= 0:
            if self._frame_at(data, inner, aad)[0] is not None:
                return inner
            inner = data.find(MAGIC, inner + 1, limit)
        return -1

    def _frame_at(self, data: bytes, pos: int, aad: bytes) -> tuple[JsonObject | None, int]:
        if data[pos : pos + len(MAGIC)] != MAGIC or pos + _FRAME_HEADER > len(data):
            return None, pos
        (length,) = _LENGTH.unpack_from(data, pos + len(MAGIC))
        end = pos + _FRAME_HEADER + length
        if length < OVERHEAD or length > MAX_RECORD_BYTES or end > len(data):
            return None, pos
        try:
            plaintext = self._keyring.open(data[pos + _FRAME_HEADER : end], aad)
            record = orjson.loads(plaintext)
        except (CryptoError, orjson.JSONDecodeError):
            return None, pos
        if not isinstance(record, dict):
            return None, pos
        return record, end
