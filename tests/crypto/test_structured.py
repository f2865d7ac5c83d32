"""RFC 8941 structured field parsing and serialisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.crypto.structured import (
    InnerList,
    Item,
    StructuredFieldError,
    Token,
    parse_dictionary,
    serialize_dictionary,
)


def test_parse_signature_input_shape() -> None:
    parsed = parse_dictionary(
        'sig1=("@method" "@path";req "signature";key="a");created=1618884473;keyid="k";'
        'alg="ed25519", sig2=:AQID:, flag, t=?0, tok=sha-256, d=1.5, neg=-3'
    )
    sig1 = parsed["sig1"]
    assert isinstance(sig1, InnerList)
    assert [i.value for i in sig1.items] == ["@method", "@path", "signature"]
    assert sig1.items[1].params == (("req", True),)
    assert sig1.param("created") == 1618884473
    assert parsed["sig2"] == Item(b"\x01\x02\x03")
    assert parsed["flag"] == Item(True)
    assert parsed["t"] == Item(False)
    assert parsed["tok"] == Item(Token("sha-256"))
    assert parsed["d"] == Item(1.5)
    assert parsed["neg"] == Item(-3)
    assert serialize_dictionary(parsed) == (
        'sig1=("@method" "@path";req "signature";key="a");created=1618884473;keyid="k";'
        'alg="ed25519", sig2=:AQID:, flag, t=?0, tok=sha-256, d=1.5, neg=-3'
    )


@pytest.mark.parametrize(
    "text",
    [
        "a=",
        "a=1,",
        "a=1 b=2",
        'a="unterminated',
        'a="bad\\escape"',
        "a=:not base64!:",
        "a=:AQID",
        "a=?2",
        "a=(1 2",
        "a=(1,2)",
        "A=1",
        "a=1234567890123456",
        "a=1.2345",
        "a=é",
        'a="\x01"',
    ],
)
def test_malformed_fields_are_rejected(text: str) -> None:
    with pytest.raises(StructuredFieldError):
        parse_dictionary(text)


keys = st.from_regex(r"[a-z*][a-z0-9_.*-]{0,8}", fullmatch=True)
bare = st.one_of(
    st.integers(-(10**15) + 1, 10**15 - 1),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    st.binary(max_size=20),
    st.booleans(),
    st.from_regex(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]{0,8}", fullmatch=True).map(Token),
)
params = st.lists(st.tuples(keys, bare), max_size=3, unique_by=lambda p: p[0]).map(tuple)
items = st.builds(Item, bare, params)
members = st.one_of(items, st.builds(InnerList, st.lists(items, max_size=3).map(tuple), params))


@given(st.dictionaries(keys, members, min_size=1, max_size=4))
def test_serialise_parse_roundtrip(value: dict) -> None:  # type: ignore[type-arg]  # generated
    assert parse_dictionary(serialize_dictionary(value)) == value
