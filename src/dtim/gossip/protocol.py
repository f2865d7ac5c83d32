"""Wire formats of the gossip protocol: items, item batches and reconciliation messages.

Every frame is at most :data:`MAX_FRAME` bytes (64 KiB). Decoders trust
nothing: whatever a peer sends either decodes into valid values or raises
:class:`~dtim.errors.ProtocolError` naming what was wrong.

Reconciliation message (binary, all integers unsigned LEB128 varints)::

    version(1 byte) flags(1 byte: bit 0 = header follows)
    [salt(16) fingerprint_size(1) hash_size(1)]        first message only
    range*                                             until the end of the frame

    range  = bound mode payload
    bound  = ts_code prefix_length prefix              ts_code 0 = infinity,
                                                       else 1 + (ts - previous ts)
    mode 0 SKIP         (no payload)
    mode 1 FINGERPRINT  count, sum of ids mod 2**(8*fingerprint_size) (little endian)
    mode 2 IDLIST       n, n salted short hashes of hash_size bytes: all my items here
    mode 3 NEED         n, n short hashes: send me these items of yours

Each range runs from the previous range's bound (the first from the lowest
key) up to its own bound, exclusive; bounds strictly increase and anything
after the last bound is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

import orjson

from dtim.aging import Verdict
from dtim.errors import ProtocolError, ValidationError
from dtim.gossip.ranges import INFINITY, MIN_BOUND, Key
from dtim.gossip.report import FORMAT_VERSION, Item, Report, Tombstone, canonical
from dtim.model.ids import IndicatorId
from dtim.model.tlp import Tlp

MAX_FRAME = 65536
"""No gossip message, of any kind, is larger than this many bytes."""
RECONCILE_VERSION = 1
SALT_SIZE = 16
FINGERPRINT_SIZES = range(4, 33)
HASH_SIZES = range(2, 33)
MAX_PREFIX = 32
_MAX_VARINT_BYTES = 10


class Mode(IntEnum):
    """What a range of a reconciliation message says."""

    SKIP = 0
    FINGERPRINT = 1
    IDLIST = 2
    NEED = 3


@dataclass(frozen=True, slots=True)
class Header:
    """Session parameters, sent once by the initiator."""

    salt: bytes
    fingerprint_size: int = 8
    hash_size: int = 4

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_SIZE:
            raise ProtocolError(f"session salt must be {SALT_SIZE} bytes")
        if self.fingerprint_size not in FINGERPRINT_SIZES:
            raise ProtocolError(f"fingerprint size {self.fingerprint_size} is out of range")
        if self.hash_size not in HASH_SIZES:
            raise ProtocolError(f"short hash size {self.hash_size} is out of range")


@dataclass(frozen=True, slots=True)
class Range:
    """One range of a message: its exclusive upper bound, mode and payload."""

    upper: Key
    mode: Mode
    count: int = 0
    total: int = 0
    hashes: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """A reconciliation message; ``header`` only on the first one."""

    ranges: tuple[Range, ...]
    header: Header | None = None


def _varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_message(message: Message, session: Header) -> bytes:
    """Binary form of a reconciliation message, using ``session``'s sizes.

    Raises:
        ProtocolError: the encoding would exceed :data:`MAX_FRAME`.
    """
    out = bytearray((RECONCILE_VERSION, 1 if message.header is not None else 0))
    if message.header is not None:
        out += message.header.salt
        out += bytes((message.header.fingerprint_size, message.header.hash_size))
    previous = 0
    modulus = 1 << (8 * session.fingerprint_size)
    for item in message.ranges:
        stamp, prefix = item.upper
        if stamp == INFINITY:
            _varint(0, out)
        else:
            _varint(stamp - previous + 1, out)
            previous = stamp
        _varint(len(prefix), out)
        out += prefix
        _varint(item.mode, out)
        if item.mode is Mode.FINGERPRINT:
            _varint(item.count, out)
            out += (item.total % modulus).to_bytes(session.fingerprint_size, "little")
        elif item.mode is not Mode.SKIP:
            _varint(len(item.hashes), out)
            for short in item.hashes:
                out += short
    if len(out) > MAX_FRAME:
        raise ProtocolError(f"reconciliation message of {len(out)} bytes exceeds {MAX_FRAME}")
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def more(self) -> bool:
        return self.at < len(self.data)

    def take(self, size: int, what: str) -> bytes:
        if self.at + size > len(self.data):
            raise ProtocolError(f"reconciliation message truncated in {what}")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def varint(self, what: str) -> int:
        value = 0
        for shift in range(0, 7 * _MAX_VARINT_BYTES, 7):
            byte = self.take(1, what)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
        raise ProtocolError(f"varint too long in {what}")


def decode_message(data: bytes, session: Header | None = None) -> Message:
    """Read a reconciliation message.

    Args:
        data: the frame.
        session: the session's header, for messages that do not carry one.

    Raises:
        ProtocolError: the frame is too large, truncated, out of order or malformed.
    """
    if len(data) > MAX_FRAME:
        raise ProtocolError(f"reconciliation message of {len(data)} bytes exceeds {MAX_FRAME}")
    reader = _Reader(data)
    version, flags = reader.take(2, "preamble")
    if version != RECONCILE_VERSION:
        raise ProtocolError(f"unsupported reconciliation version {version}")
    if flags not in (0, 1):
        raise ProtocolError(f"unknown reconciliation flags {flags}")
    header = None
    if flags == 1:
        salt = reader.take(SALT_SIZE, "salt")
        sizes = reader.take(2, "header")
        header = Header(salt, sizes[0], sizes[1])
    params = header or session
    if params is None:
        raise ProtocolError("first reconciliation message has no session header")
    ranges: list[Range] = []
    previous_stamp = 0
    lower = MIN_BOUND
    while reader.more():
        if lower[0] == INFINITY:
            raise ProtocolError("range after the infinite bound")
        code = reader.varint("bound")
        stamp = INFINITY if code == 0 else previous_stamp + code - 1
        if stamp >= INFINITY and code != 0:
            raise ProtocolError("bound timestamp out of range")
        length = reader.varint("bound prefix")
        if length > MAX_PREFIX or (code == 0 and length):
            raise ProtocolError("bound prefix too long")
        upper = (stamp, reader.take(length, "bound prefix"))
        if upper <= lower:
            raise ProtocolError("range bounds are not increasing")
        if code != 0:
            previous_stamp = stamp
        ranges.append(_payload(reader, upper, params))
        lower = upper
    return Message(tuple(ranges), header)


def _payload(reader: _Reader, upper: Key, params: Header) -> Range:
    raw_mode = reader.varint("mode")
    try:
        mode = Mode(raw_mode)
    except ValueError:
        raise ProtocolError(f"unknown range mode {raw_mode}") from None
    if mode is Mode.SKIP:
        return Range(upper, mode)
    if mode is Mode.FINGERPRINT:
        count = reader.varint("count")
        total = int.from_bytes(reader.take(params.fingerprint_size, "fingerprint"), "little")
        return Range(upper, mode, count=count, total=total)
    number = reader.varint("id list")
    size = params.hash_size
    blob = reader.take(number * size, "id list")
    return Range(upper, mode, hashes=tuple(blob[i : i + size] for i in range(0, len(blob), size)))


# -- items and batches ------------------------------------------------------------


def _strings(document: Mapping[str, object], name: str) -> tuple[str, ...]:
    value = document.get(name)
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ProtocolError(f"item field {name!r}: missing or not a list of strings")
    return tuple(value)


def _text(document: Mapping[str, object], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise ProtocolError(f"item field {name!r}: missing or not a string")
    return value


def _number(document: Mapping[str, object], name: str) -> int:
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"item field {name!r}: missing or not an integer")
    return value


def decode_item(document: object) -> Item:
    """Read one report or tombstone from its JSON form.

    Raises:
        ProtocolError: naming the field that is missing or wrong.
    """
    if not isinstance(document, dict):
        raise ProtocolError("item is not a JSON object")
    if document.get("v") != FORMAT_VERSION:
        raise ProtocolError(f"item field 'v': unsupported version {document.get('v')!r}")
    kind = document.get("kind")
    if kind not in ("report", "tombstone"):
        raise ProtocolError(f"item field 'kind': unknown kind {kind!r}")
    expected = _REPORT_FIELDS if kind == "report" else _TOMBSTONE_FIELDS
    extra = set(document) - expected
    if extra:
        raise ProtocolError(f"item has unknown fields: {', '.join(sorted(extra))}")
    try:
        tlp = Tlp(_text(document, "tlp"))
        if kind == "report":
            return Report(
                indicator=IndicatorId(_text(document, "indicator")),
                type=_text(document, "type"),
                value=_text(document, "value"),
                tlp=tlp,
                recipients=_strings(document, "recipients"),
                bucket=_number(document, "bucket"),
                confidence=_number(document, "confidence"),
                tags=_strings(document, "tags"),
                reporter=_text(document, "reporter"),
                expires=_number(document, "expires"),
            )
        return Tombstone(
            indicator=IndicatorId(_text(document, "indicator")),
            verdict=Verdict(_text(document, "verdict")),
            tlp=tlp,
            recipients=_strings(document, "recipients"),
            issued=_number(document, "issued"),
            expires=_number(document, "expires"),
            issuer=_text(document, "issuer"),
            issuer_key=_text(document, "issuer_key"),
            signature=_text(document, "signature"),
        )
    except ValidationError as exc:
        raise ProtocolError(f"item field {exc.field!r}: {exc.reason}") from exc
    except ValueError as exc:
        raise ProtocolError(f"item has an unknown marking or verdict: {exc}") from exc


_REPORT_FIELDS = frozenset(
    {"v", "kind", "indicator", "type", "value", "tlp", "recipients", "bucket"}
    | {"confidence", "tags", "reporter", "expires"}
)
_TOMBSTONE_FIELDS = frozenset(
    {"v", "kind", "indicator", "verdict", "tlp", "recipients", "issued", "expires", "issuer"}
    | {"issuer_key", "signature"}
)


def encode_batch(items: Iterable[Item], limit: int = MAX_FRAME) -> list[bytes]:
    """Pack items into as few ``{"v": 1, "items": [...]}`` frames of at most ``limit`` bytes."""
    frames: list[bytes] = []
    chunk: list[bytes] = []
    size = len(_BATCH_OPEN) + len(_BATCH_CLOSE)
    for item in items:
        encoded = canonical(item.to_json())
        if chunk and size + len(encoded) + 1 > limit:
            frames.append(_BATCH_OPEN + b",".join(chunk) + _BATCH_CLOSE)
            chunk = []
            size = len(_BATCH_OPEN) + len(_BATCH_CLOSE)
        chunk.append(encoded)
        size += len(encoded) + 1
    if chunk:
        frames.append(_BATCH_OPEN + b",".join(chunk) + _BATCH_CLOSE)
    return frames


_BATCH_OPEN = b'{"items":['
_BATCH_CLOSE = b'],"v":1}'


def decode_batch(frame: bytes) -> list[Item]:
    """Read a batch frame.

    Raises:
        ProtocolError: oversized frame, bad JSON, or a bad item (named by index).
    """
    if len(frame) > MAX_FRAME:
        raise ProtocolError(f"batch of {len(frame)} bytes exceeds {MAX_FRAME}")
    try:
        document = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"batch is not JSON: {exc}") from exc
    if (
        not isinstance(document, dict)
        or document.get("v") != 1
        or not isinstance(document.get("items"), list)
    ):
        raise ProtocolError('batch must be {"v": 1, "items": [...]}')
    items: list[Item] = []
    for index, raw in enumerate(document["items"]):
        try:
            items.append(decode_item(raw))
        except ProtocolError as exc:
            raise ProtocolError(f"batch item {index}: {exc}") from exc
    return items
