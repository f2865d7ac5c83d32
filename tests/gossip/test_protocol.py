"""Wire formats: round trips and every way a peer's bytes can be wrong."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.errors import ProtocolError
from dtim.gossip.protocol import (
    MAX_FRAME,
    Header,
    Message,
    Mode,
    Range,
    decode_batch,
    decode_item,
    decode_message,
    encode_batch,
    encode_message,
)
from dtim.gossip.ranges import INFINITY, MAX_BOUND
from dtim.gossip.report import Item
from dtim.model.tlp import Tlp
from tests.gossip.reports import make_report, make_tombstone

HEADER = Header(b"s" * 16, fingerprint_size=8, hash_size=4)


@st.composite
def messages(draw: st.DrawFn) -> tuple[Message, Header]:
    header = Header(
        draw(st.binary(min_size=16, max_size=16)),
        draw(st.integers(4, 32)),
        draw(st.integers(2, 32)),
    )
    stamps = sorted(draw(st.lists(st.integers(0, INFINITY - 1), max_size=12)))
    bounds = sorted({(s, draw(st.binary(max_size=32))) for s in stamps} - {(0, b"")})
    if draw(st.booleans()):
        bounds.append(MAX_BOUND)
    ranges = []
    for bound in bounds:
        mode = draw(st.sampled_from(list(Mode)))
        if mode is Mode.FINGERPRINT:
            total = draw(st.integers(0, 2 ** (8 * header.fingerprint_size) - 1))
            ranges.append(Range(bound, mode, count=draw(st.integers(0, 2**40)), total=total))
        elif mode is Mode.SKIP:
            ranges.append(Range(bound, mode))
        else:
            shorts = draw(
                st.lists(
                    st.binary(min_size=header.hash_size, max_size=header.hash_size), max_size=5
                )
            )
            ranges.append(Range(bound, mode, hashes=tuple(shorts)))
    with_header = draw(st.booleans())
    return Message(tuple(ranges), header if with_header else None), header


@given(messages())
def test_reconcile_messages_round_trip(case: tuple[Message, Header]) -> None:
    message, header = case
    data = encode_message(message, header)
    assert decode_message(data, header) == message


def test_fingerprint_is_truncated_to_its_size() -> None:
    data = encode_message(Message((Range(MAX_BOUND, Mode.FINGERPRINT, 3, 2**70 + 5),)), HEADER)
    assert decode_message(data, HEADER).ranges[0].total == (2**70 + 5) % 2**64


def test_header_limits() -> None:
    for salt, fingerprint, short in ((b"x", 8, 4), (b"s" * 16, 3, 4), (b"s" * 16, 8, 1)):
        with pytest.raises(ProtocolError):
            Header(salt, fingerprint, short)


def test_encoder_refuses_an_oversized_frame() -> None:
    huge = Range(MAX_BOUND, Mode.IDLIST, hashes=(b"abcd",) * (MAX_FRAME // 4))
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_message(Message((huge,)), HEADER)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(out) + bytes((value,))


def _frame(*parts: bytes, header: bool = False) -> bytes:
    preamble = bytes((1, 1)) + b"s" * 16 + bytes((8, 4)) if header else bytes((1, 0))
    return preamble + b"".join(parts)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00" * (MAX_FRAME + 1), "exceeds"),
        (b"\x01", "truncated in preamble"),
        (bytes((2, 0)), "unsupported reconciliation version 2"),
        (bytes((1, 2)), "unknown reconciliation flags"),
        (bytes((1, 1)) + b"s" * 3, "truncated in salt"),
        (_frame(b"\x80" * 11), "varint too long"),
        (_frame(b"\x00\x00\x00", b"\x05\x00\x00"), "after the infinite bound"),
        (
            _frame(_varint(2**62 + 1) + b"\x00\x00", _varint(2**62 + 1) + b"\x00\x00"),
            "out of range",
        ),
        (_frame(b"\x05\x21"), "prefix too long"),
        (_frame(b"\x00\x01\x00"), "prefix too long"),
        (_frame(b"\x01\x00\x00"), "not increasing"),
        (_frame(b"\x05\x00\x00", b"\x01\x00\x00"), "not increasing"),
        (_frame(b"\x05\x00\x09"), "unknown range mode 9"),
        (_frame(b"\x05\x00\x01\x01abc"), "truncated in fingerprint"),
        (_frame(b"\x05\x00\x02\x02abcd"), "truncated in id list"),
        (_frame(b"\x05\x02a"), "truncated in bound prefix"),
    ],
)
def test_decoder_names_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_message(data, HEADER)


def test_first_message_needs_a_header() -> None:
    with pytest.raises(ProtocolError, match="no session header"):
        decode_message(_frame(b"\x00\x00\x00"))
    decoded = decode_message(_frame(b"\x00\x00\x00", header=True))
    assert decoded.header == HEADER
    assert decoded.ranges == (Range(MAX_BOUND, Mode.SKIP),)


@given(st.binary(max_size=200))
def test_decoder_only_raises_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_message(data, HEADER)


# -- items and batches -------------------------------------------------------------


def test_items_round_trip_through_batches() -> None:
    items: list[Item] = [make_report(f"198.51.100.{i}", confidence=i) for i in range(50)]
    items += [make_tombstone(), make_report(tlp=Tlp.RED, recipients=("peer-b",), tags=("ssh",))]
    frames = encode_batch(items, limit=2048)
    assert len(frames) > 1
    assert all(len(frame) <= 2048 for frame in frames)
    assert [item for frame in frames for item in decode_batch(frame)] == items
    assert encode_batch([]) == []
    assert decode_batch(encode_batch(items)[0]) == items


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v": 2}, "unsupported version"),
        ({"kind": "rumour"}, "unknown kind"),
        ({"origin": "me"}, "unknown fields: origin"),
        ({"value": 5}, "'value': missing or not a string"),
        ({"bucket": "noon"}, "'bucket': missing or not an integer"),
        ({"bucket": True}, "'bucket': missing or not an integer"),
        ({"tags": ["a", 1]}, "'tags': missing or not a list of strings"),
        ({"tlp": "purple"}, "unknown marking"),
        ({"confidence": 120}, "'confidence'"),
    ],
)
def test_bad_reports_are_named(change: dict[str, object], message: str) -> None:
    document = {**make_report().to_json(), **change}
    with pytest.raises(ProtocolError, match=message):
        decode_item(document)


def test_bad_tombstones_and_non_objects() -> None:
    with pytest.raises(ProtocolError, match="unknown marking or verdict"):
        decode_item({**make_tombstone().to_json(), "verdict": "meh"})
    with pytest.raises(ProtocolError, match="'verdict'"):
        decode_item({**make_tombstone().to_json(), "verdict": "confirmed"})
    with pytest.raises(ProtocolError, match="not a JSON object"):
        decode_item([1, 2])
    assert decode_item(make_tombstone().to_json()) == make_tombstone()
    keyless = {k: v for k, v in make_tombstone().to_json().items() if k != "issuer_key"}
    with pytest.raises(ProtocolError, match="'issuer_key': missing"):
        decode_item(keyless)
    with pytest.raises(ProtocolError, match=r"'issuer_key'.*32-byte"):
        decode_item({**make_tombstone().to_json(), "issuer_key": "AAAA"})
    with pytest.raises(ProtocolError, match=r"'issuer'.*node id"):
        decode_item({**make_tombstone().to_json(), "issuer": "node-a"})


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b" " * (MAX_FRAME + 1), "exceeds"),
        (b"{nope", "not JSON"),
        (b"[]", "must be"),
        (b'{"v": 1, "items": {}}', "must be"),
        (b'{"v": 2, "items": []}', "must be"),
        (orjson.dumps({"v": 1, "items": [make_report().to_json(), {"v": 1}]}), "batch item 1"),
    ],
)
def test_bad_batches(frame: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_batch(frame)
