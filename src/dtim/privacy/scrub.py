"""Stripping: find internal information in free text and in indicator values.

Two kinds of checks, both fail closed:

* **Known terms** (:class:`SensitiveTerms`): organisation names and types, node
  names, and what local evidence taught us (host names, user names, paths).
  Matching is on whole tokens, case-insensitive: ``acme`` stops ``acme-vpn``
  and ``ACME Corp`` but not ``acmebank``.
* **Shapes** that are internal wherever they appear: e-mail addresses and
  ``user@host``, file paths (Unix, Windows, UNC), log lines (clock times,
  ``prog[pid]:``, ``KEY=value`` firewall fields, JSON records, tabs),
  ``user=``/``uid=`` fields and Windows SIDs, MAC addresses, UUIDs (node-internal
  ids), private or reserved addresses, names under internal suffixes or the
  organisation's domains, and URLs pointing at either.

A tag or custom field with any finding is dropped whole (the indicator stays).
An indicator *value* is withheld when its URL carries user info or an
internal address/name/e-mail, or when it contains a known term.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Set

from dtim.model import Indicator, JsonValue
from dtim.privacy.warninglists import Category, Warninglists

_SPLIT = re.compile(r"[\W_]+")
_ASCII_SEPARATORS = str.maketrans(
    {chr(code): " " for code in range(128) if not chr(code).isalnum()}
)
_SHAPES = re.compile(
    r"(?P<email>[^\s@<>()\[\]{},;\"']+@[^\s@<>()\[\]{},;\"']+)"
    r"|(?P<path>(?<![\w.~-])(?:~|\.{1,2})?/[^\s/]+/"
    r"|(?<![\w/])/(?:etc|home|root|var|usr|opt|tmp|srv|mnt|media|proc|sys|dev|boot|run|users|library)\b"
    r"|\b[a-z]:\\|\\\\[^\\\s]+|%[a-z_]+%[\\/]|\b[\w.-]+\\[\w.$-]+)"
    r"|(?P<log>\b\d{1,2}:\d{2}:\d{2}\b|\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}|\b[\w./-]+\[\d+\]:"
    r"|\b(?:src|dst|spt|dpt|proto|in|out|mac|len|ttl|id)=\S|\{\s*\"|[\t\r\n]|\b1[5-9]\d{8}\.\d+\b)"
    r"|(?P<user>\b(?:uid|gid|euid|auid|ruid|user|username|usr|login|logname|account|acct|owner"
    r"|samaccountname|upn)\s*[=:]\s*\S|\bs-1-5-21-\d)"
    r"|(?P<mac>\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\b)"
    r"|(?P<uuid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)",
)
# The part of _SHAPES that applies to a URL's path and query (which are paths by nature).
_PERSONAL = re.compile(
    r"(?P<email>[^\s@<>()\[\]{},;\"'/?&=]+@[^\s@<>()\[\]{},;\"'/?&=]+)"
    r"|(?P<user>\b(?:uid|gid|euid|auid|ruid|user|username|usr|login|logname|account|acct|owner"
    r"|samaccountname|upn)\s*[=:]\s*\S)"
)
_SHAPE_REASONS = {
    "email": "an e-mail address or user@host",
    "path": "a file path or DOMAIN\\user",
    "log": "a log line or timestamp",
    "user": "a user id",
    "mac": "a MAC address",
    "uuid": "an internal identifier (UUID)",
}
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d)")
_IPV6 = re.compile(r"(?<![0-9a-f:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![0-9a-f:])")
_HOST = re.compile(
    r"(?<![\w.-])(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\.)+[a-z0-9-]*[a-z][a-z0-9-]*(?![\w-])"
)
_NON_BENIGN = (Category.INTERNAL, Category.SPECIAL)
_ADDRESS_TYPES = frozenset({"ipv4", "ipv6", "cidr"})
_HASH_TYPES = frozenset({"md5", "sha1", "sha256", "sha512"})
MAX_CUSTOM_DEPTH = 4


def _normalise(text: str) -> str:
    return " ".join(_SPLIT.split(text.casefold())).strip()


class SensitiveTerms:
    """Words and phrases that must never leave, matched on whole tokens.

    An index from each term's first token keeps a check proportional to the
    number of tokens in the text, not to the number of terms.
    """

    __slots__ = ("_by_first", "_whole")

    def __init__(self, terms: Iterable[str] = ()) -> None:
        self._by_first: dict[str, set[str]] = {}
        self._whole: set[str] = set()
        self.update(terms)

    def update(self, terms: Iterable[str]) -> None:
        """Add terms (empty or punctuation-only ones are ignored)."""
        for term in terms:
            normal = _normalise(term)
            if normal:
                self._by_first.setdefault(normal.split(" ", 1)[0], set()).add(normal)
                self._whole.add(term.strip().casefold())

    @property
    def whole(self) -> Set[str]:
        """Every term as given, stripped and casefolded (a live view: it grows with updates)."""
        return self._whole

    def is_term(self, value: str) -> bool:
        """Whether ``value`` (an address, say) is itself one of the terms."""
        return value.casefold() in self._whole

    def __len__(self) -> int:
        """Number of distinct terms."""
        return sum(len(group) for group in self._by_first.values())

    def found_in(self, text: str) -> bool:
        """Whether any term occurs in ``text`` as whole tokens."""
        if not self._by_first:
            return False
        if text.isascii():
            tokens = text.translate(_ASCII_SEPARATORS).lower().split()
        else:
            tokens = [token for token in _SPLIT.split(text.casefold()) if token]
        # Almost every text shares no token with any term's first token: one C-level test.
        if self._by_first.keys().isdisjoint(tokens):
            return False
        padded = f" {' '.join(tokens)} "
        for token in set(tokens):
            group = self._by_first.get(token)
            if group is not None and any(term == token or f" {term} " in padded for term in group):
                return True
        return False


class Scrubber:
    """Finds internal information; answers with a reason (for people) or None."""

    def __init__(self, warninglists: Warninglists, terms: SensitiveTerms) -> None:
        self.warninglists = warninglists
        self.terms = terms
        self._known = terms.whole  # the live set: terms learned later are seen too

    def text_leak(self, text: str) -> str | None:
        """Why free text (a tag, a custom field string) must not leave, or None."""
        if self.terms.found_in(text):
            return "contains an organisation name or a known internal name"
        lowered = text.casefold()
        reason = self._embedded(lowered)
        if reason is not None:
            return reason
        shape = _SHAPES.search(_URL.sub(" ", lowered))
        if shape is not None:
            return f"contains {_SHAPE_REASONS[shape.lastgroup or 'log']}"
        return None

    def json_leak(self, value: JsonValue, depth: int = 0) -> str | None:
        """Why a custom field's JSON value must not leave (any string, key included), or None."""
        if isinstance(value, str):
            return self.text_leak(value)
        if isinstance(value, float) and not math.isfinite(value):
            return "not a finite number"
        if depth >= MAX_CUSTOM_DEPTH and isinstance(value, list | dict):
            return f"nested deeper than {MAX_CUSTOM_DEPTH} levels"
        if isinstance(value, list):
            items: Iterable[JsonValue] = value
        elif isinstance(value, dict):
            for key in value:
                reason = self.text_leak(str(key))
                if reason is not None:
                    return reason
            items = value.values()
        else:
            return None
        for item in items:
            reason = self.json_leak(item, depth + 1)
            if reason is not None:
                return reason
        return None

    def value_leak(self, indicator: Indicator) -> str | None:
        """Why the indicator's value itself carries internal information, or None."""
        kind = indicator.type
        value = indicator.value
        if kind in _ADDRESS_TYPES:
            # Addresses carry no names; only an address learned as a local host is internal.
            # (Normalised addresses are lowercase already: no casefold on this hot path.)
            return "the value is a known internal host" if value in self._known else None
        if kind in _HASH_TYPES:
            return None
        if self.terms.found_in(value):
            return "the value contains an organisation name or a known internal name"
        if kind == "url":
            rest = value[value.find("://") + 3 :]
            slash = rest.find("/")
            authority, tail = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
            if "@" in authority:
                return "the URL carries a user name or password"
            lowered = tail.casefold()
            reason = self._embedded(lowered)
            if reason is None and (personal := _PERSONAL.search(lowered)) is not None:
                reason = f"contains {_SHAPE_REASONS[personal.lastgroup or 'user']}"
            return None if reason is None else f"the URL {reason}"
        if kind not in ("domain", "email"):
            return self.text_leak(value)
        return None

    def _embedded(self, lowered: str) -> str | None:
        """Internal URLs, addresses and host names inside lowercase text."""
        # Cheap character tests skip the regular expressions that cannot match.
        has_dot = "." in lowered
        has_colon = ":" in lowered
        for match in _URL.finditer(lowered) if "://" in lowered else ():
            authority = match.group().split("://", 1)[1].split("/", 1)[0]
            host = authority.rpartition("@")[2]
            host = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
            if "@" in authority or ("." not in host and ":" not in host):
                return "contains an internal URL"
            hit = self.warninglists.match_address(host) or self.warninglists.match_host(
                host, "text"
            )
            if hit is not None and hit.category in _NON_BENIGN:
                return "contains an internal URL"
        patterns = ((_IPV4,) if has_dot else ()) + ((_IPV6,) if has_colon else ())
        for pattern in patterns:
            for match in pattern.finditer(lowered):
                hit = self.warninglists.match_address(match.group())
                if hit is not None and hit.category in _NON_BENIGN:
                    return "contains a private, reserved or own address"
        for match in _HOST.finditer(lowered) if has_dot else ():
            hit = self.warninglists.match_host(match.group(), "text")
            if hit is not None:
                return "contains an internal host name"
        if "localhost" in lowered:
            return "contains an internal host name"
        return None
