"""STIX patterns for indicator values, and back (STIX 2.1 §9, Patterning).

Writing is a lookup and an escape: one comparison per indicator, on the
observable property that SIEMs and the STIX examples use. Reading accepts
what DTIM and most feeds write: a comparison ``=`` (or ``ISSUBSET`` for IP
networks) on a property DTIM knows, several of them joined by ``OR`` (each
becomes its own indicator). Anything else, such as ``AND``, ``FOLLOWEDBY``,
qualifiers, negation, ``LIKE`` or ``MATCHES``, cannot be turned into plain
indicators without changing its meaning and is refused with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stix2patterns.exceptions import ParseException
from stix2patterns.v21.grammars.STIXPatternListener import STIXPatternListener
from stix2patterns.v21.pattern import Pattern

from dtim.errors import StixError
from dtim.model import IndicatorType

HASH_KEYS: dict[str, str] = {
    IndicatorType.MD5: "MD5",
    IndicatorType.SHA1: "SHA-1",
    IndicatorType.SHA256: "SHA-256",
    IndicatorType.SHA512: "SHA-512",
}
"""DTIM hash type -> key in the STIX ``hash-algorithm-ov`` vocabulary."""

_PREFIX: dict[str, str] = {
    IndicatorType.IPV4: "[ipv4-addr:value = '",
    IndicatorType.IPV6: "[ipv6-addr:value = '",
    IndicatorType.DOMAIN: "[domain-name:value = '",
    IndicatorType.URL: "[url:value = '",
    IndicatorType.EMAIL: "[email-addr:value = '",
    **{kind: f"[file:hashes.'{key}' = '" for kind, key in HASH_KEYS.items()},
}

_HASH_BY_KEY: dict[str, str] = {
    "md5": IndicatorType.MD5,
    "sha-1": IndicatorType.SHA1,
    "sha1": IndicatorType.SHA1,
    "sha-256": IndicatorType.SHA256,
    "sha256": IndicatorType.SHA256,
    "sha-512": IndicatorType.SHA512,
    "sha512": IndicatorType.SHA512,
}
_VALUE_TYPES: dict[str, str] = {
    "ipv4-addr": IndicatorType.IPV4,
    "ipv6-addr": IndicatorType.IPV6,
    "domain-name": IndicatorType.DOMAIN,
    "url": IndicatorType.URL,
    "email-addr": IndicatorType.EMAIL,
}
CUSTOM_PREFIX = "x-dtim-"
"""Observable type prefix for custom DTIM indicator types (``x-dtim-<name>:value``)."""


class UnsupportedPatternError(StixError):
    """A valid STIX pattern that does not reduce to plain indicator values; ``reason`` says why."""

    def __init__(self, pattern: str, reason: str) -> None:
        self.pattern = pattern
        self.reason = reason
        super().__init__(f"unsupported pattern {pattern!r}: {reason}")


@dataclass(frozen=True, slots=True)
class PatternValue:
    """One indicator value read from a pattern: DTIM type name and the raw value."""

    type: str
    value: str


def escape(value: str) -> str:
    """Escape a value for a STIX pattern string literal (backslash, then quote)."""
    if "\\" in value or "'" in value:
        return value.replace("\\", "\\\\").replace("'", "\\'")
    return value


def build_pattern(type_: str, value: str) -> str:
    """The STIX pattern that matches an indicator value of DTIM type ``type_``.

    CIDR networks are written as ``ipv4-addr:value`` / ``ipv6-addr:value``
    equality, which STIX 2.1 §6.4/§6.5 allows ("MAY be a CIDR"), and which
    simple consumers read as the network.
    """
    prefix = _PREFIX.get(type_)
    if prefix is None:
        if type_ == IndicatorType.CIDR:
            prefix = _PREFIX[IndicatorType.IPV6 if ":" in value else IndicatorType.IPV4]
        else:
            prefix = f"[{custom_object_type(type_)}:value = '"
    return prefix + escape(value) + "']"


def custom_object_type(type_: str) -> str:
    """The STIX custom observable type for a DTIM custom indicator type (``_`` is not allowed)."""
    return CUSTOM_PREFIX + type_.replace("_", "-")


# What DTIM itself writes: one comparison, a plain property or a hash key.
_SIMPLE = re.compile(
    r"\[\s*([a-z0-9-]+):(value|hashes\.'([A-Za-z0-9-]+)'|hashes\.([A-Za-z0-9]+))\s*=\s*'((?:[^'\\]|\\['\\])*)'\s*\]"
)


def parse_pattern(pattern: str) -> list[PatternValue]:
    """Indicator values a pattern stands for, one per ``OR``-joined comparison.

    Raises:
        StixError: the pattern is not valid STIX patterning.
        UnsupportedPatternError: valid, but not a disjunction of simple comparisons.
    """
    simple = _SIMPLE.fullmatch(pattern.strip())
    if simple is not None:
        # Fast path for the single-comparison form: it is a strict subset of the
        # grammar, so parsing it with ANTLR (about a millisecond) would add nothing.
        obj, prop, quoted_key, bare_key, literal = simple.groups()
        path = [prop] if prop == "value" else ["hashes", quoted_key or bare_key]
        return [_value_of(pattern, obj, path, "=", _unescape(literal))]
    try:
        compiled = Pattern(pattern)
    except ParseException as exc:
        raise StixError(f"invalid STIX pattern {pattern!r}: {exc}") from exc
    listener = _Collector()
    compiled.walk(listener)
    if listener.unsupported:
        raise UnsupportedPatternError(pattern, listener.unsupported)
    return [
        _value_of(pattern, obj, path, op, value) for obj, path, op, value in listener.comparisons
    ]


_ESCAPED = re.compile(r"\\(['\\])")


def _unescape(literal: str) -> str:
    if "\\" not in literal:
        return literal
    return _ESCAPED.sub(r"\1", literal)


def _value_of(pattern: str, obj: str, path: list[str], op: str, value: str) -> PatternValue:
    if obj == "file" and len(path) == 2 and path[0] == "hashes":
        digest = _HASH_BY_KEY.get(path[1].lower())
        if digest is None:
            raise UnsupportedPatternError(
                pattern, f"hash algorithm {path[1]!r} is not one DTIM tracks"
            )
        if op != "=":
            raise UnsupportedPatternError(pattern, f"operator {op} on a file hash")
        return PatternValue(digest, value)
    email_from = obj == "email-message" and path == ["from_ref", "value"]
    if path != ["value"] and not email_from:
        raise UnsupportedPatternError(
            pattern, f"property {obj}:{'.'.join(path)} is not an indicator value"
        )
    kind: str | None
    if email_from:
        kind = IndicatorType.EMAIL
    elif obj.startswith(CUSTOM_PREFIX):
        kind = obj.removeprefix(CUSTOM_PREFIX)
    else:
        kind = _VALUE_TYPES.get(obj)
    if kind is None:
        raise UnsupportedPatternError(pattern, f"object type {obj!r} has no DTIM indicator type")
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6):
        if op == "ISSUBSET" or "/" in value:
            kind = IndicatorType.CIDR
    elif op != "=":
        raise UnsupportedPatternError(pattern, f"operator {op} on {obj}")
    return PatternValue(kind, value)


class _Collector(STIXPatternListener):  # type: ignore[misc]  # stix2patterns ships no type hints
    """Walks a parse tree, keeping comparisons and noting the first construct DTIM cannot import."""

    def __init__(self) -> None:
        self.comparisons: list[tuple[str, list[str], str, str]] = []
        self.unsupported = ""
        self._object = ""
        self._path: list[str] = []

    def _refuse(self, reason: str) -> None:
        if not self.unsupported:
            self.unsupported = reason

    def enterObservationExpressions(self, ctx: Any) -> None:
        if ctx.FOLLOWEDBY():
            self._refuse("FOLLOWEDBY joins observations in time; no single value stands for it")

    def enterObservationExpressionAnd(self, ctx: Any) -> None:
        if ctx.AND():
            self._refuse("AND of observations needs several values together")

    def enterComparisonExpressionAnd(self, ctx: Any) -> None:
        if ctx.AND():
            self._refuse("AND of comparisons needs several values together")

    def enterObservationExpressionRepeated(self, ctx: Any) -> None:
        self._refuse("REPEATS qualifier")

    def enterObservationExpressionWithin(self, ctx: Any) -> None:
        self._refuse("WITHIN qualifier")

    def enterObservationExpressionStartStop(self, ctx: Any) -> None:
        self._refuse("START/STOP qualifier")

    def enterPropTestOrder(self, ctx: Any) -> None:
        self._refuse("ordering comparison (<, >, <=, >=)")

    def enterPropTestSet(self, ctx: Any) -> None:
        self._refuse("IN set comparison")

    def enterPropTestLike(self, ctx: Any) -> None:
        self._refuse("LIKE comparison")

    def enterPropTestRegex(self, ctx: Any) -> None:
        self._refuse("MATCHES comparison")

    def enterPropTestIsSuperset(self, ctx: Any) -> None:
        self._refuse("ISSUPERSET comparison")

    def enterPropTestExists(self, ctx: Any) -> None:
        self._refuse("EXISTS test")

    def exitObjectType(self, ctx: Any) -> None:
        self._object = str(ctx.getText())

    def exitFirstPathComponent(self, ctx: Any) -> None:
        literal = ctx.StringLiteral()
        self._path = [_literal(literal) if literal else str(ctx.getText())]

    def exitKeyPathStep(self, ctx: Any) -> None:
        ident = ctx.IdentifierWithoutHyphen()
        self._path.append(str(ident.getText()) if ident else _literal(ctx.StringLiteral()))

    def exitIndexPathStep(self, ctx: Any) -> None:
        self._path.append("[]")

    def exitPropTestEqual(self, ctx: Any) -> None:
        if ctx.NOT() or ctx.NEQ():
            self._refuse("negated comparison")
            return
        literal = ctx.primitiveLiteral()
        orderable = literal.orderableLiteral()
        token = orderable.StringLiteral() if orderable is not None else None
        if token is None:
            self._refuse(f"comparison with a non-string literal {literal.getText()}")
            return
        self.comparisons.append((self._object, list(self._path), "=", _literal(token)))

    def exitPropTestIsSubset(self, ctx: Any) -> None:
        if ctx.NOT():
            self._refuse("negated comparison")
            return
        if self._object not in ("ipv4-addr", "ipv6-addr"):
            self._refuse(f"ISSUBSET on {self._object}")
            return
        self.comparisons.append(
            (self._object, list(self._path), "ISSUBSET", _literal(ctx.StringLiteral()))
        )


def _literal(token: Any) -> str:
    text = str(token.getText())
    return _unescape(text[1:-1])
