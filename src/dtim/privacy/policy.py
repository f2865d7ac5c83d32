"""The node's privacy policy: level, custom fields, own networks, timing and noise.

The policy is a frozen, hashable value built from the ``[privacy]`` section of
the config (``service.py`` does that, or :func:`policy_from_mapping`). It never
reads files or settings itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from dtim.errors import ConfigError, ValidationError
from dtim.privacy.names import canonical_domain
from dtim.privacy.ranges import parse_network

DEFAULT_SIGHTINGS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
"""Sightings leave as the lower bound of the bucket they fall in (13 → 10)."""


class PrivacyLevel(StrEnum):
    """How much of an indicator leaves: the seed's three levels."""

    STRICT = "strict"
    MODERATE = "moderate"
    OPEN = "open"

    @classmethod
    def parse(cls, raw: str, key: str = "privacy.level") -> PrivacyLevel:
        """Read a level name.

        Raises:
            ConfigError: naming ``key`` when the name is not a level (fail closed).
        """
        try:
            return cls(raw.strip().lower())
        except ValueError:
            choices = ", ".join(level.value for level in cls)
            raise ConfigError(
                f"unknown privacy level {raw!r} (expected {choices})", key=key
            ) from None


class TimestampPrecision(StrEnum):
    """To what unit timestamps are floored before they leave."""

    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"

    @classmethod
    def parse(cls, raw: str, key: str = "privacy.timestamp_precision") -> TimestampPrecision:
        """Read a precision name.

        Raises:
            ConfigError: naming ``key`` when the name is not a precision.
        """
        try:
            return cls(raw.strip().lower())
        except ValueError:
            choices = ", ".join(unit.value for unit in cls)
            raise ConfigError(
                f"unknown timestamp precision {raw!r} (expected {choices})", key=key
            ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivacyPolicy:
    """What may leave this node, and in what shape.

    Attributes:
        level: the node's default level (``privacy.level``).
        allow_custom_fields: master switch for custom fields (``privacy.allow_custom_fields``).
        allowed_custom_fields: custom field names that may leave at ``open``; all others are
            dropped even when the switch is on.
        peer_levels: per-peer level overrides as ``(peer_id, level)`` pairs.
        own_networks: the organisation's networks (addresses, CIDRs, ``a-b`` ranges).
        own_domains: the organisation's domains; their subdomains and staff e-mail are covered.
        org_names: organisation names, types and other words that identify it; any field
            containing one is dropped (the value: the indicator is withheld).
        redact_terms: further internal identifiers (node name, host names, user names).
        extra_warninglist_entries: networks or domains added to the ``config`` warninglist.
        disabled_warninglists: names of shipped lists to switch off (e.g. ``top-domains``).
        timestamp_precision: unit timestamps are floored to.
        dp_epsilon: Laplace noise budget per released count; 0 turns noise off.
        sightings_buckets: ascending bucket lower bounds starting at 1; empty means
            no bucketing, allowed only with noise on.
    """

    level: PrivacyLevel = PrivacyLevel.MODERATE
    allow_custom_fields: bool = False
    allowed_custom_fields: frozenset[str] = frozenset()
    peer_levels: tuple[tuple[str, PrivacyLevel], ...] = ()
    own_networks: tuple[str, ...] = ()
    own_domains: tuple[str, ...] = ()
    org_names: tuple[str, ...] = ()
    redact_terms: tuple[str, ...] = ()
    extra_warninglist_entries: tuple[str, ...] = ()
    disabled_warninglists: tuple[str, ...] = ()
    timestamp_precision: TimestampPrecision = TimestampPrecision.HOUR
    dp_epsilon: float = 0.0
    sightings_buckets: tuple[int, ...] = DEFAULT_SIGHTINGS_BUCKETS

    def __post_init__(self) -> None:
        for network in self.own_networks:
            try:
                parse_network(network)
            except ValidationError:
                raise ConfigError(
                    f"{network!r} is not an address, CIDR or range", key="privacy.own_networks"
                ) from None
        for domain in self.own_domains:
            try:
                canonical_domain(domain)
            except ValidationError:
                raise ConfigError(
                    f"{domain!r} is not a domain name", key="privacy.own_domains"
                ) from None
        for entry in self.extra_warninglist_entries:
            try:
                parse_network(entry)
            except ValidationError:
                try:
                    canonical_domain(entry)
                except ValidationError:
                    raise ConfigError(
                        f"{entry!r} is neither a network nor a domain",
                        key="privacy.warninglist_entries",
                    ) from None
        if not math.isfinite(self.dp_epsilon) or self.dp_epsilon < 0:
            raise ConfigError(
                f"must be a finite number >= 0, got {self.dp_epsilon!r}", key="privacy.dp_epsilon"
            )
        buckets = self.sightings_buckets
        if buckets and (buckets[0] != 1 or any(b <= a for a, b in pairwise(buckets))):
            raise ConfigError(
                "must be strictly ascending and start at 1", key="privacy.sightings_buckets"
            )
        if not buckets and self.dp_epsilon == 0:
            raise ConfigError(
                "exact sightings would leave the node: keep buckets or set privacy.dp_epsilon",
                key="privacy.sightings_buckets",
            )
        if any(not term.strip() for term in (*self.org_names, *self.redact_terms)):
            raise ConfigError("empty term", key="privacy.org_names")

    def level_for(self, peer_id: str | None) -> PrivacyLevel:
        """The level for a peer: its override if it has one, else the node's level."""
        if peer_id is not None:
            for peer, level in self.peer_levels:
                if peer == peer_id:
                    return level
        return self.level


def _strings(data: Mapping[str, object], key: str) -> tuple[str, ...]:
    raw = data.get(key, ())
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not all(isinstance(item, str) for item in raw):
        raise ConfigError("must be a list of strings", key=f"privacy.{key}")
    return tuple(raw)


def policy_from_mapping(data: Mapping[str, object]) -> PrivacyPolicy:
    """Build a policy from the ``[privacy]`` table of the config (plain TOML values).

    Keys: ``level``, ``allow_custom_fields``, ``allowed_custom_fields``, ``peer_levels``
    (a table peer id → level), ``own_networks``, ``own_domains``, ``org_names``,
    ``redact_terms``, ``warninglist_entries`` (extra networks or domains),
    ``disabled_warninglists``, ``timestamp_precision``, ``dp_epsilon``,
    ``sightings_buckets``. ``warninglists`` names extra list *files*: the caller
    reads them with :func:`dtim.privacy.load_warninglist_file` and hands them to
    the filter. Unknown keys are ignored here; the config loader reports them.

    Raises:
        ConfigError: naming the first key with a bad value.
    """
    level = data.get("level", PrivacyLevel.MODERATE.value)
    precision = data.get("timestamp_precision", TimestampPrecision.HOUR.value)
    if not isinstance(level, str):
        raise ConfigError("must be a string", key="privacy.level")
    if not isinstance(precision, str):
        raise ConfigError("must be a string", key="privacy.timestamp_precision")
    allow = data.get("allow_custom_fields", False)
    if not isinstance(allow, bool):
        raise ConfigError("must be true or false", key="privacy.allow_custom_fields")
    epsilon = data.get("dp_epsilon", 0.0)
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise ConfigError("must be a number", key="privacy.dp_epsilon")
    peers = data.get("peer_levels", {})
    if not isinstance(peers, Mapping) or not all(isinstance(v, str) for v in peers.values()):
        raise ConfigError("must be a table of peer id = level", key="privacy.peer_levels")
    buckets = data.get("sightings_buckets", list(DEFAULT_SIGHTINGS_BUCKETS))
    if not isinstance(buckets, list | tuple) or not all(
        isinstance(b, int) and not isinstance(b, bool) for b in buckets
    ):
        raise ConfigError("must be a list of integers", key="privacy.sightings_buckets")
    return PrivacyPolicy(
        level=PrivacyLevel.parse(level),
        allow_custom_fields=allow,
        allowed_custom_fields=frozenset(_strings(data, "allowed_custom_fields")),
        peer_levels=_peer_levels(peers.items()),
        own_networks=_strings(data, "own_networks"),
        own_domains=_strings(data, "own_domains"),
        org_names=_strings(data, "org_names"),
        redact_terms=_strings(data, "redact_terms"),
        extra_warninglist_entries=_strings(data, "warninglist_entries"),
        disabled_warninglists=_strings(data, "disabled_warninglists"),
        timestamp_precision=TimestampPrecision.parse(precision),
        dp_epsilon=float(epsilon),
        sightings_buckets=tuple(buckets),
    )


def _peer_levels(items: Iterable[tuple[object, object]]) -> tuple[tuple[str, PrivacyLevel], ...]:
    return tuple(
        sorted(
            (str(peer), PrivacyLevel.parse(str(level), key=f"privacy.peer_levels.{peer}"))
            for peer, level in items
        )
    )
