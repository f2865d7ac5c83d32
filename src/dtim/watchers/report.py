"""Turning a rule firing into a Sighting: indicator, scope, confidence, tags and evidence.

Addresses in the node's own networks, RFC 1918, loopback, link-local and
other reserved ranges, and internal host names, are still reported (an
internal host scanning is worth knowing) but with ``Scope.LOCAL`` so they
never leave the node.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from dtim.errors import ParseError, ValidationError
from dtim.model import Evidence, JsonValue, Scope, Sighting, make_indicator
from dtim.watchers.base import WatcherContext
from dtim.watchers.rules import Rule
from dtim.watchers.timestamps import to_datetime
from dtim.watchers.windows import Firing

INTERNAL_SUFFIXES = (
    ".local",
    ".lan",
    ".internal",
    ".intranet",
    ".corp",
    ".home",
    ".home.arpa",
    ".localdomain",
    ".localhost",
    ".private",
    ".test",
    ".invalid",
    ".example",
)
_SCOPE_CACHE = 65536
MAX_EVIDENCE_ITEMS = 20


class Reporter:
    """Builds sightings for one watcher.

    Args:
        source: the watcher name; becomes a tag and the indicator's source.
        context: own networks and domains, and the clock for ``created``.
    """

    def __init__(self, source: str, context: WatcherContext) -> None:
        self.source = source
        self.context = context
        self._scopes: dict[str, Scope] = {}
        self._own_domains = tuple(d.lower().strip(".") for d in context.own_domains)

    def ip_scope(self, address: str) -> Scope:
        """LOCAL for own, private and reserved addresses, PRIVATE (shareable with peers) otherwise.

        Raises:
            ParseError: the text is not an IP address.
        """
        known = self._scopes.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise ParseError(self.source, f"{address!r} is not an IP address") from None
        local = (
            not ip.is_global
            or ip.is_multicast
            or any(ip.version == net.version and ip in net for net in self.context.own_networks)
        )
        scope = Scope.LOCAL if local else Scope.PRIVATE
        if len(self._scopes) >= _SCOPE_CACHE:
            self._scopes.clear()
        self._scopes[address] = scope
        return scope

    def is_internal(self, address: str) -> bool:
        """True for addresses that ``ip_scope`` keeps local; False also for non-addresses."""
        try:
            return self.ip_scope(address) is Scope.LOCAL
        except ParseError:
            return False

    def domain_scope(self, name: str) -> Scope:
        """LOCAL for single-label, internal-suffix and own domains."""
        lowered = name.lower().rstrip(".")
        if "." not in lowered or lowered.endswith(INTERNAL_SUFFIXES):
            return Scope.LOCAL
        for own in self._own_domains:
            if lowered == own or lowered.endswith("." + own):
                return Scope.LOCAL
        return Scope.PRIVATE

    def sighting(
        self,
        rule: Rule,
        value: str,
        type_: str,
        *,
        first: float,
        last: float,
        count: int = 1,
        lines: Iterable[str] = (),
        hosts: Iterable[str] = (),
        users: Iterable[str] = (),
        paths: Iterable[str] = (),
        details: Mapping[str, JsonValue] | None = None,
        tags: Iterable[str] = (),
        confidence: int | None = None,
        scope: Scope | None = None,
    ) -> Sighting:
        """One sighting of ``value`` for ``rule``.

        Raises:
            ParseError: ``value`` is not a valid ``type_`` indicator.
        """
        if scope is None:
            if type_ in ("ipv4", "ipv6"):
                scope = self.ip_scope(value)
            elif type_ == "domain":
                scope = self.domain_scope(value)
            else:
                scope = Scope.PRIVATE
        first_seen = to_datetime(min(first, last))
        last_seen = to_datetime(last)
        try:
            indicator = make_indicator(
                value,
                type_,
                now=self.context.clock.now(),
                confidence=rule.confidence if confidence is None else max(0, min(100, confidence)),
                tags=(*rule.tags, *tags, self.source),
                scope=scope,
                sources=(self.source,),
                sightings=1,
                first_seen=first_seen,
                last_seen=last_seen,
            )
        except ValidationError as exc:
            raise ParseError(self.source, f"rule {rule.name}: {exc}") from exc
        facts: dict[str, JsonValue] = {
            "threshold": rule.threshold,
            "window_seconds": rule.window,
        }
        if details:
            facts.update(details)
        evidence = Evidence(
            lines=tuple(lines)[-MAX_EVIDENCE_ITEMS:],
            hosts=_distinct(hosts),
            users=_distinct(users),
            paths=_distinct(paths),
            details=facts,
        )
        return Sighting(
            indicator=indicator,
            source=self.source,
            rule=rule.name,
            observed_at=last_seen,
            count=count,
            evidence=evidence,
        )

    def from_firing(
        self,
        firing: Firing,
        value: str,
        type_: str,
        *,
        hosts: Iterable[str] = (),
        users: Iterable[str] = (),
        paths: Iterable[str] = (),
        details: Mapping[str, JsonValue] | None = None,
        tags: Iterable[str] = (),
        confidence: int | None = None,
        scope: Scope | None = None,
    ) -> Sighting:
        """A sighting for a tracker firing (count, times and lines taken from it).

        Raises:
            ParseError: ``value`` is not a valid ``type_`` indicator.
        """
        facts: dict[str, JsonValue] = dict(details or {})
        if firing.values:
            facts["values"] = list(firing.values)
        return self.sighting(
            firing.rule,
            value,
            type_,
            first=firing.first,
            last=firing.last,
            count=firing.count,
            lines=firing.lines,
            hosts=hosts,
            users=users,
            paths=paths,
            details=facts,
            tags=tags,
            confidence=confidence,
            scope=scope,
        )


def _distinct(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item != "-" and item not in seen:
            seen[item] = None
            if len(seen) >= MAX_EVIDENCE_ITEMS:
                break
    return tuple(seen)
