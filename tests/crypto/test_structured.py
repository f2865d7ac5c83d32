"""RFC 8941 structured field parsing and serialisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.crypto.structured import (
    InnerList,
    Item,
    Member,
    StructuredFieldError,
    Token,
    _Parser,
    parse_dictionary,
    parse_simple_dictionary,
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


# --- the fast path for DTIM's own shapes must agree with the full parser -------------------

_KEYS = st.sampled_from(["dtim", "sig1", "sha-256", "a*b", "k_1.x", "A", "1x", "", "dtim "])
_STRINGS = st.text(alphabet=st.sampled_from('@abz-09 "\\\t~!#é'), max_size=12)
_INTEGERS = st.sampled_from(["0", "7", "007", "-0", "-42", "1618884473", "9" * 15, "9" * 16, "-"])
_TOKENS = st.sampled_from(["ed25519", "sha-256", "a:b/c", "*x", "Tok", "1tok", "t;"])
_OTHER = st.sampled_from(["1.5", "?1", "?0", "?", ":AQID:", "", "x y"])


@st.composite
def _param_values(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["int", "str", "token", "other"]))
    if kind == "int":
        return draw(_INTEGERS)
    if kind == "str":
        return '"' + draw(_STRINGS) + '"'
    return draw(_TOKENS if kind == "token" else _OTHER)


@st.composite
def _member_texts(draw: st.DrawFn) -> str:
    """DTIM-shaped dictionary members, with now and then a deviation."""
    if draw(st.booleans()):
        strings = draw(st.lists(_STRINGS, max_size=6))
        sep = draw(st.sampled_from([" ", " ", " ", "  ", ""]))
        value = "(" + sep.join(f'"{s}"' for s in strings) + ")"
    else:
        chars = st.sampled_from("ABCDEFGHabcxyz0189+/=!")
        value = ":" + draw(st.text(alphabet=chars, max_size=16)) + ":"
    params = "".join(
        draw(st.sampled_from([";", ";", "; "])) + draw(_KEYS) + "=" + draw(_param_values())
        for _ in range(draw(st.integers(0, 6)))
    )
    text = draw(_KEYS) + draw(st.sampled_from(["=", "=", "=", ""])) + value + params
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " ", ", b=1"]))


def _full(text: str) -> dict[str, Member] | None:
    try:
        return _Parser(text.strip(" ")).dictionary()
    except StructuredFieldError:
        return None


@given(_member_texts())
def test_fast_path_agrees_with_the_full_parser(text: str) -> None:
    full = _full(text)
    fast = parse_simple_dictionary(text.strip(" "))
    if fast is not None:
        assert fast == full
    if full is None:
        with pytest.raises(StructuredFieldError):
            parse_dictionary(text)
    else:
        assert parse_dictionary(text) == full


@given(st.text(alphabet=st.sampled_from('dtim=():;" ,-0123456789abc@AZ+/*\t.?'), max_size=40))
def test_fast_path_never_accepts_what_the_parser_refuses(text: str) -> None:
    fast = parse_simple_dictionary(text.strip(" "))
    if fast is not None:
        assert fast == _full(text)


def test_fast_path_takes_dtims_headers() -> None:
    identity_key = "ab" * 32
    signature_input = (
        'dtim=("@method" "@path" "@query" "content-digest" "dtim-recipient");created=1618884473'
        f';expires=1618884773;nonce="n0nce-_AZ09";keyid="{identity_key}";alg="ed25519"'
        ';tag="dtim-request"'
    )
    for text in (signature_input, "dtim=:" + "A" * 86 + "==:", "sha-256=:" + "B" * 43 + "=:"):
        fast = parse_simple_dictionary(text)
        assert fast is not None
        assert fast == _full(text)
    # Shapes it leaves to the full parser.
    for text in ('a=("x";req)', "a=1.5", "a, b", 'a=("x"  "y")', "a=:AQ:", "a=:!!:"):
        assert parse_simple_dictionary(text) is None
