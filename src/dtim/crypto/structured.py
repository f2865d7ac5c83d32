"""RFC 8941 Structured Field Values: the parts HTTP message signatures need.

Parses and serialises Dictionaries, Inner Lists, Items and Parameters with the
bare item types Integer, Decimal, String, Token, Byte Sequence and Boolean,
following the algorithms of RFC 8941 section 4 (strict: any deviation is an
error, as the RFC requires for the whole field).
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache

from dtim.errors import SignatureError


@dataclass(frozen=True, slots=True)
class Token:
    """An sf-token (unquoted word such as ``sha-256`` or ``*``)."""

    value: str


BareItem = int | float | str | Token | bytes | bool
Params = tuple[tuple[str, BareItem], ...]


@dataclass(frozen=True, slots=True)
class Item:
    """A bare item with parameters."""

    value: BareItem
    params: Params = ()

    def param(self, name: str) -> BareItem | None:
        """The value of parameter ``name``, if present."""
        return dict(self.params).get(name)


@dataclass(frozen=True, slots=True)
class InnerList:
    """A parenthesised list of items, with parameters."""

    items: tuple[Item, ...]
    params: Params = field(default=())

    def param(self, name: str) -> BareItem | None:
        """The value of parameter ``name``, if present."""
        return dict(self.params).get(name)


Member = Item | InnerList

_KEY_FIRST = set(string.ascii_lowercase + "*")
_KEY_CHARS = _KEY_FIRST | set(string.digits + "_-.")
_TOKEN_FIRST = set(string.ascii_letters + "*")
_B64_CHARS = set(string.ascii_letters + string.digits + "+/=")
_DIGITS = set(string.digits)
# Fast paths for the common lexemes; the character loops below stay the reference.
_KEY_RE = re.compile(r"[a-z*][a-z0-9_.*-]*")
_PLAIN_STRING_RE = re.compile(r'"([ !#-\[\]-~]*)"')
_TOKEN_RE = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_INTEGER_RE = re.compile(r"-?[0-9]{1,15}(?![0-9.])")
_PRINTABLE_RE = re.compile(r"[ -~]*")
_MAX_INTEGER = 999_999_999_999_999
_PLAIN_CHARS_RE = re.compile(r"[ !#-\[\]-~]*")
# Fast path for the one-member dictionaries DTIM sends (Signature-Input, Signature,
# Content-Digest): no spaces, plain strings, integers and tokens only. Anything else
# goes through the full parser, so strictness and error messages are the parser's.
_SF_KEY = _KEY_RE.pattern
_SF_STRING = f'"{_PLAIN_CHARS_RE.pattern}"'
_SF_TOKEN = _TOKEN_RE.pattern
_SF_INTEGER = r"-?[0-9]{1,15}"
_FAST_MEMBER_RE = re.compile(
    rf"({_SF_KEY})=(?:\(((?:{_SF_STRING}(?: {_SF_STRING})*)?)\)|:([A-Za-z0-9+/=]*):)"
    rf"((?:;{_SF_KEY}=(?:{_SF_INTEGER}|{_SF_STRING}|{_SF_TOKEN}))*)"
)
_FAST_PARAM_RE = re.compile(
    rf';({_SF_KEY})=(?:({_SF_INTEGER})|"({_PLAIN_CHARS_RE.pattern})"|({_SF_TOKEN}))'
)


class StructuredFieldError(SignatureError):
    """A structured header does not parse; ``reason`` says where."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"malformed structured field: {detail}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def fail(self, what: str) -> StructuredFieldError:
        return StructuredFieldError(f"{what} at offset {self.i}")

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.i += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t"):
            self.i += 1

    def key(self) -> str:
        match = _KEY_RE.match(self.s, self.i)
        if match:
            self.i = match.end()
            return match.group()
        if self.peek() not in _KEY_FIRST:
            raise self.fail("expected a key")
        start = self.i
        while self.peek() in _KEY_CHARS:
            self.i += 1
        return self.s[start : self.i]

    def dictionary(self) -> dict[str, Member]:
        members: dict[str, Member] = {}
        while self.i < len(self.s):
            name = self.key()
            if self.peek() == "=":
                self.i += 1
                members[name] = self.item_or_inner_list()
            else:
                members[name] = Item(True, self.params())
            self.skip_ows()
            if self.i >= len(self.s):
                return members
            if self.peek() != ",":
                raise self.fail("expected ','")
            self.i += 1
            self.skip_ows()
            if self.i >= len(self.s):
                raise self.fail("trailing ','")
        return members

    def item_or_inner_list(self) -> Member:
        if self.peek() == "(":
            return self.inner_list()
        return self.item()

    def inner_list(self) -> InnerList:
        self.i += 1
        items: list[Item] = []
        while self.i < len(self.s):
            self.skip_sp()
            if self.peek() == ")":
                self.i += 1
                return InnerList(tuple(items), self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise self.fail("expected ' ' or ')' in inner list")
        raise self.fail("unterminated inner list")

    def item(self) -> Item:
        value = self.bare_item()
        return Item(value, self.params())

    def params(self) -> Params:
        out: dict[str, BareItem] = {}
        while self.peek() == ";":
            self.i += 1
            self.skip_sp()
            name = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare_item()
            out[name] = value  # a repeated key overwrites, keeping its first position
        return tuple(out.items())

    def bare_item(self) -> BareItem:
        c = self.peek()
        if c == "-" or c in _DIGITS:
            return self.number()
        if c == '"':
            return self.string()
        if c == ":":
            return self.byte_sequence()
        if c == "?":
            return self.boolean()
        if c in _TOKEN_FIRST:
            return self.token()
        raise self.fail("expected an item")

    def number(self) -> int | float:
        match = _INTEGER_RE.match(self.s, self.i)
        if match:
            self.i = match.end()
            return int(match.group())
        start = self.i
        if self.peek() == "-":
            self.i += 1
        digits_start = self.i
        while self.peek() in _DIGITS:
            self.i += 1
        is_decimal = self.peek() == "."
        if is_decimal:
            self.i += 1
            frac_start = self.i
            while self.peek() in _DIGITS:
                self.i += 1
            if not 1 <= self.i - frac_start <= 3 or frac_start - 1 - digits_start > 12:
                raise self.fail("bad decimal")
        if self.i == digits_start or (not is_decimal and self.i - digits_start > 15):
            raise self.fail("bad integer")
        text = self.s[start : self.i]
        return float(text) if is_decimal else int(text)

    def string(self) -> str:
        match = _PLAIN_STRING_RE.match(self.s, self.i)
        if match:
            self.i = match.end()
            return match.group(1)
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                nxt = self.peek()
                if nxt not in ('"', "\\"):
                    raise self.fail("bad escape in string")
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not " " <= c <= "~":
                raise self.fail("bad character in string")
            else:
                out.append(c)
        raise self.fail("unterminated string")

    def token(self) -> Token:
        # bare_item() only comes here on a valid first character, so this matches.
        match = _TOKEN_RE.match(self.s, self.i)
        if match is None:
            raise self.fail("expected a token")
        self.i = match.end()
        return Token(match.group())

    def byte_sequence(self) -> bytes:
        end = self.s.find(":", self.i + 1)
        if end < 0:
            raise self.fail("unterminated byte sequence")
        body = self.s[self.i + 1 : end]
        if not set(body) <= _B64_CHARS:
            raise self.fail("bad byte sequence")
        self.i = end + 1
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise self.fail("bad base64 in byte sequence") from None

    def boolean(self) -> bool:
        self.i += 1
        c = self.peek()
        if c not in ("0", "1"):
            raise self.fail("bad boolean")
        self.i += 1
        return c == "1"


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse an sf-dictionary field value (combined field lines).

    Raises:
        StructuredFieldError: the value is not a valid dictionary.
    """
    text = text.strip(" ")
    fast = parse_simple_dictionary(text)
    if fast is not None:
        return fast
    return _Parser(text).dictionary()


def parse_simple_dictionary(text: str) -> dict[str, Member] | None:
    """The fast path of :func:`parse_dictionary` for DTIM's own shapes; None for anything else.

    Takes exactly one member, ``key=:bytes:`` or ``key=("s" "s" ...)``, with optional
    parameters whose values are integers, plain strings or tokens, no optional spaces.
    When it returns a value, it is what the full parser returns for ``text``.
    """
    match = _FAST_MEMBER_RE.fullmatch(text)
    if match is None:
        return None
    name, inner, encoded, params_text = match.groups()
    params = _simple_params(params_text) if params_text else ()
    if inner is None:
        try:
            value = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None  # the full parser words the error
        return {name: Item(value, params)}
    return {name: InnerList(_string_items(inner), params)}


def _simple_params(text: str) -> Params:
    out: dict[str, BareItem] = {}
    for key, integer, plain, token in _FAST_PARAM_RE.findall(text):
        # findall gives "" for the alternatives that did not match; a string may be empty.
        out[key] = int(integer) if integer else Token(token) if token else plain
    return tuple(out.items())


@lru_cache(maxsize=64)
def _string_items(inner: str) -> tuple[Item, ...]:
    # The component list is the same on every request: build its items once.
    # A plain string holds no '"', so '" "' only ever separates two items.
    return tuple(Item(text) for text in inner[1:-1].split('" "')) if inner else ()


def serialize_bare_item(value: BareItem) -> str:
    """Serialise one bare item (RFC 8941 section 4.1.3.1)."""
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > _MAX_INTEGER:
            raise StructuredFieldError("integer out of range")
        return str(value)
    if isinstance(value, float):
        text = f"{round(value, 3):.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if not _PRINTABLE_RE.fullmatch(value):
        raise StructuredFieldError("string has a non-printable or non-ASCII character")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_params(params: Params) -> str:
    """Serialise parameters (``;key=value`` ...)."""
    parts = []
    for name, value in params:
        # The common cases inline: a string with nothing to escape, an in-range integer.
        if isinstance(value, str) and _PLAIN_CHARS_RE.fullmatch(value):
            parts.append(f';{name}="{value}"')
        elif type(value) is int and -_MAX_INTEGER <= value <= _MAX_INTEGER:  # not a bool
            parts.append(f";{name}={value}")
        elif value is True:
            parts.append(f";{name}")
        else:
            parts.append(f";{name}={serialize_bare_item(value)}")
    return "".join(parts)


def serialize_item(item: Item) -> str:
    """Serialise an item with its parameters."""
    return serialize_bare_item(item.value) + serialize_params(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    """Serialise an inner list with its parameters."""
    return (
        "("
        + " ".join(serialize_item(i) for i in inner.items)
        + ")"
        + serialize_params(inner.params)
    )


def serialize_member(member: Member) -> str:
    """Serialise a dictionary member value."""
    return serialize_inner_list(member) if isinstance(member, InnerList) else serialize_item(member)


def serialize_dictionary(members: dict[str, Member]) -> str:
    """Serialise an sf-dictionary."""
    parts = []
    for name, member in members.items():
        if isinstance(member, Item) and member.value is True:
            parts.append(name + serialize_params(member.params))
        else:
            parts.append(f"{name}={serialize_member(member)}")
    return ", ".join(parts)
