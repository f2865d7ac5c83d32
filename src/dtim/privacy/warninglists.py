"""Warninglists: values that are never shared and never accepted from a peer.

Shipped lists live in ``dtim/privacy/data/*.txt``, one list per file, each with
a header naming its source and date::

    # name: rfc1918
    # description: private IPv4 address space
    # category: internal            internal | special | benign
    # match: suffix                 domains: suffix (the name and its subdomains) or exact
    # applies-to: domain url email  which indicator types the domain entries stop;
    #                               url-root stops only a site's bare URL (https://site/)
    # source: RFC 1918
    # date: 2026-11-28
    10.0.0.0/8                      an address, CIDR, first-last range or domain per line

Networks always stop ipv4, ipv6, cidr (on any overlap) and URLs whose host is an
address. The node's own networks and domains, and the config's extra entries,
become the lists ``own-networks``, ``own-domains`` and ``config``, checked first.
Lookups are one bisect over sorted integer ranges per address and one dict probe
per domain label, whatever the size of the lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from socket import AF_INET, inet_pton

from dtim.errors import ConfigError, ValidationError
from dtim.model import Indicator
from dtim.privacy.names import canonical_domain
from dtim.privacy.policy import PrivacyPolicy
from dtim.privacy.ranges import (
    IPV4_BITS,
    IPV6_BITS,
    RangeTable,
    cidr_bounds,
    ipv4_to_int,
    ipv6_to_int,
    parse_network,
)

BUILTIN_LISTS = (
    "loopback",
    "rfc1918",
    "shared-address-space",
    "unique-local",
    "link-local",
    "cloud-metadata",
    "documentation",
    "benchmarking",
    "multicast",
    "reserved",
    "public-dns",
    "dns-root-servers",
    "cdn",
    "internal-names",
    "special-names",
    "top-domains",
)
"""Shipped list names, in the order they win ties."""

APPLIES_TO = frozenset({"domain", "url", "url-root", "email"})
_HEADER_KEYS = frozenset(
    {"name", "description", "category", "match", "applies-to", "source", "date"}
)


class Category(StrEnum):
    """What kind of thing a list names."""

    INTERNAL = "internal"
    """The organisation's own or private infrastructure: a leak if it appears anywhere."""
    SPECIAL = "special"
    """Reserved, documentation and special-use space: never a real attacker."""
    BENIGN = "benign"
    """Public infrastructure that is harmless and must not be blocked."""


@dataclass(frozen=True, slots=True)
class WarninglistHit:
    """Which list stopped a value, and the entry that matched."""

    list_name: str
    entry: str
    category: Category
    description: str

    def to_json(self) -> dict[str, str]:
        """Plain JSON for ``--json`` output and the audit log."""
        return {
            "list": self.list_name,
            "entry": self.entry,
            "category": self.category.value,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class Warninglist:
    """One named list of networks and domains."""

    name: str
    description: str = ""
    category: Category = Category.INTERNAL
    source: str = ""
    date: str = ""
    networks: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    exact: bool = False
    applies_to: frozenset[str] = field(
        default_factory=lambda: frozenset({"domain", "url", "email"})
    )


def parse_warninglist(
    text: str, *, name: str | None = None, origin: str = "<warninglist>"
) -> Warninglist:
    """Read a list in the data-file format (see the module docstring).

    Raises:
        ConfigError: naming ``origin`` and the line of a bad header or entry.
    """
    header: dict[str, str] = {}
    networks: list[str] = []
    domains: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and key.strip().lower() in _HEADER_KEYS and key.strip().lower() not in header:
                header[key.strip().lower()] = value.strip()
            continue
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        kind, canonical = _classify(entry, origin, number)
        (networks if kind == "network" else domains).append(canonical)
    list_name = header.get("name") or name or Path(origin).stem
    try:
        category = Category(header.get("category", Category.INTERNAL.value))
    except ValueError:
        raise ConfigError(
            f"unknown category {header['category']!r}", path=origin, key="category"
        ) from None
    match = header.get("match", "suffix")
    if match not in {"suffix", "exact"}:
        raise ConfigError(f"match must be suffix or exact, got {match!r}", path=origin, key="match")
    applies = frozenset(header.get("applies-to", "domain url email").split())
    if not applies <= APPLIES_TO:
        raise ConfigError(
            f"applies-to may name only {sorted(APPLIES_TO)}", path=origin, key="applies-to"
        )
    return Warninglist(
        name=list_name,
        description=header.get("description", ""),
        category=category,
        source=header.get("source", ""),
        date=header.get("date", ""),
        networks=tuple(networks),
        domains=tuple(domains),
        exact=match == "exact",
        applies_to=applies,
    )


def load_warninglist_file(path: Path) -> Warninglist:
    """Read an operator's extra list file (same format as the shipped ones).

    Raises:
        ConfigError: the file cannot be read or is malformed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read warninglist: {exc}", path=str(path)) from exc
    return parse_warninglist(text, origin=str(path))


@lru_cache(maxsize=1)
def builtin_warninglists() -> tuple[Warninglist, ...]:
    """The lists shipped in the package, in :data:`BUILTIN_LISTS` order."""
    folder = resources.files("dtim.privacy").joinpath("data")
    return tuple(
        parse_warninglist(
            folder.joinpath(f"{name}.txt").read_text(encoding="utf-8"), origin=f"{name}.txt"
        )
        for name in BUILTIN_LISTS
    )


def _classify(entry: str, origin: str, line: int) -> tuple[str, str]:
    try:
        parse_network(entry)
    except ValidationError:
        pass
    else:
        return "network", entry
    try:
        return "domain", canonical_domain(entry)
    except ValidationError as exc:
        raise ConfigError(
            f"{entry!r} is neither a network nor a domain ({exc.reason})", path=origin, line=line
        ) from None


@lru_cache(maxsize=64)
def _network_bounds(wlist: Warninglist) -> tuple[tuple[str, int, int, int], ...]:
    # Parsing is most of the cost of building lists; shipped lists are parsed once.
    return tuple((entry, *parse_network(entry)) for entry in wlist.networks)


def policy_lists(policy: PrivacyPolicy) -> tuple[Warninglist, ...]:
    """The lists a policy adds: own networks, own domains and extra config entries."""
    config_networks: list[str] = []
    config_domains: list[str] = []
    for number, entry in enumerate(policy.extra_warninglist_entries, start=1):
        kind, canonical = _classify(entry, "privacy.warninglist_entries", number)
        (config_networks if kind == "network" else config_domains).append(canonical)
    return (
        Warninglist("own-networks", "this organisation's networks", networks=policy.own_networks),
        Warninglist(
            "own-domains",
            "this organisation's domains, their subdomains and staff e-mail",
            domains=tuple(canonical_domain(domain) for domain in policy.own_domains),
        ),
        Warninglist(
            "config",
            "entries added in privacy.warninglist_entries",
            networks=tuple(config_networks),
            domains=tuple(config_domains),
        ),
    )


class Warninglists:
    """All active lists, compiled for fast lookups; build once and share."""

    def __init__(self, lists: Iterable[Warninglist]) -> None:
        self.lists = tuple(lists)
        intervals: dict[int, list[tuple[int, int, WarninglistHit]]] = {4: [], 6: []}
        self._suffix: dict[str, dict[str, WarninglistHit]] = {
            ctx: {} for ctx in (*APPLIES_TO, "text")
        }
        self._exact: dict[str, dict[str, WarninglistHit]] = {
            ctx: {} for ctx in (*APPLIES_TO, "text")
        }
        for wlist in self.lists:
            for entry, version, start, end in _network_bounds(wlist):
                intervals[version].append((start, end, self._hit(wlist, entry)))
            contexts = set(wlist.applies_to)
            if "url" in contexts:
                contexts.discard("url-root")  # a list stopping every URL already stops bare ones
            if wlist.category is not Category.BENIGN:
                contexts.add("text")
            table = self._exact if wlist.exact else self._suffix
            for entry in wlist.domains:
                hit = self._hit(wlist, entry)
                for context in contexts:
                    table[context].setdefault(entry, hit)
        self._v4 = RangeTable(intervals[4], IPV4_BITS)
        self._v6 = RangeTable(intervals[6], IPV6_BITS)
        self._find_v4 = self._v4.find

    @classmethod
    def for_policy(
        cls, policy: PrivacyPolicy, extra_lists: Iterable[Warninglist] = ()
    ) -> Warninglists:
        """The policy's own lists, then ``extra_lists``, then the shipped ones not disabled.

        Raises:
            ConfigError: a disabled list name is unknown, or an extra entry is malformed.
        """
        unknown = set(policy.disabled_warninglists) - set(BUILTIN_LISTS)
        if unknown:
            raise ConfigError(
                f"unknown warninglist(s) {sorted(unknown)}", key="privacy.disabled_warninglists"
            )
        shipped = (w for w in builtin_warninglists() if w.name not in policy.disabled_warninglists)
        return cls((*policy_lists(policy), *extra_lists, *shipped))

    @staticmethod
    def _hit(wlist: Warninglist, entry: str) -> WarninglistHit:
        return WarninglistHit(wlist.name, entry, wlist.category, wlist.description)

    def match(self, indicator: Indicator) -> WarninglistHit | None:
        """The list an indicator's value is on, or None."""
        kind = indicator.type
        if kind == "ipv4":
            # The hot path (most indicators are IPv4 addresses): no further calls.
            try:
                number = int.from_bytes(inet_pton(AF_INET, indicator.value), "big")
            except OSError:
                return None
            return self._find_v4(number)
        return self.match_value(kind, indicator.value)

    def match_value(self, type_: str, value: str) -> WarninglistHit | None:
        """The list a normalised value of ``type_`` is on, or None (hashes and custom types)."""
        if type_ == "ipv4":
            number = ipv4_to_int(value)
            return None if number is None else self._v4.find(number)
        if type_ == "ipv6":
            number = ipv6_to_int(value)
            return None if number is None else self._v6.find(number)
        if type_ == "domain":
            return self.match_host(value, "domain")
        if type_ == "url":
            return self._match_url(value)
        if type_ == "email":
            return self.match_host(value.rpartition("@")[2], "email")
        if type_ == "cidr":
            bounds = cidr_bounds(value)
            if bounds is None:
                return None
            version, start, end = bounds
            return (self._v4 if version == 4 else self._v6).overlapping(start, end)
        return None

    def match_address(self, text: str) -> WarninglistHit | None:
        """The list an address (either family, no brackets) is on, or None if not an address."""
        number = ipv4_to_int(text)
        if number is not None:
            return self._v4.find(number)
        number = ipv6_to_int(text)
        return None if number is None else self._v6.find(number)

    def match_host(self, host: str, context: str = "domain") -> WarninglistHit | None:
        """The list a lowercase host is on in ``context``: domain, url, url-root, email or text."""
        hit = self._exact[context].get(host)
        if hit is not None:
            return hit
        suffixes = self._suffix[context]
        name = host
        while True:
            hit = suffixes.get(name)
            if hit is not None:
                return hit
            dot = name.find(".")
            if dot < 0:
                return None
            name = name[dot + 1 :]

    def _match_url(self, value: str) -> WarninglistHit | None:
        rest = value[value.find("://") + 3 :]
        slash = rest.find("/")
        authority, tail = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        host = authority.rpartition("@")[2]
        if host.startswith("["):
            return self.match_address(host[1 : host.find("]")])
        host = host.partition(":")[0].lower()
        if ipv4_to_int(host) is not None:
            return self.match_address(host)
        if "." not in host:
            return WarninglistHit(
                "internal-names", host, Category.INTERNAL, "single-label (intranet) host name"
            )
        hit = self.match_host(host, "url")
        if hit is None and tail in ("", "/"):
            hit = self.match_host(host, "url-root")
        return hit
