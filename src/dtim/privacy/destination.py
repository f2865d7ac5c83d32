"""Where a copy of an indicator is about to go: a peer, a group, a consumer, or everyone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from dtim.errors import ValidationError
from dtim.model import Tlp
from dtim.privacy.policy import PrivacyLevel

ALL_TLPS = frozenset(Tlp)


class DestinationKind(StrEnum):
    """The four kinds of recipient the filter knows."""

    PEER = "peer"
    """One approved peer, known by id, with the groups it belongs to (gossip)."""
    GROUP = "group"
    """Every member of a named group at once (member ids unknown to the filter)."""
    CONSUMER = "consumer"
    """A TAXII user, export file or webhook: peer rules, capped to the TLPs it was granted."""
    PUBLIC = "public"
    """Anyone: the public endpoint and public exports."""


@dataclass(frozen=True, slots=True)
class Destination:
    """One recipient of shared indicators.

    Build it with :meth:`peer`, :meth:`group`, :meth:`consumer` or :meth:`public`.
    ``level`` overrides the policy's level for this destination (per export, per peer).
    """

    kind: DestinationKind
    name: str
    groups: frozenset[str] = frozenset()
    tlps: frozenset[Tlp] = ALL_TLPS
    level: PrivacyLevel | None = None

    @classmethod
    def peer(
        cls, peer_id: str, groups: Iterable[str] = (), *, level: PrivacyLevel | None = None
    ) -> Destination:
        """An approved peer and the groups it is a member of."""
        return cls(
            DestinationKind.PEER, _required(peer_id, "peer id"), frozenset(groups), ALL_TLPS, level
        )

    @classmethod
    def group(cls, name: str, *, level: PrivacyLevel | None = None) -> Destination:
        """All members of a group."""
        group = _required(name, "group name")
        return cls(DestinationKind.GROUP, group, frozenset({group}), ALL_TLPS, level)

    @classmethod
    def consumer(
        cls,
        name: str,
        *,
        tlps: Iterable[Tlp] = (Tlp.CLEAR, Tlp.GREEN),
        groups: Iterable[str] = (),
        level: PrivacyLevel | None = None,
    ) -> Destination:
        """A TAXII user, export or webhook granted ``tlps`` (RED never reaches one)."""
        return cls(
            DestinationKind.CONSUMER,
            _required(name, "consumer name"),
            frozenset(groups),
            frozenset(tlps),
            level,
        )

    @classmethod
    def public(cls, *, level: PrivacyLevel | None = None) -> Destination:
        """Everyone: only TLP:CLEAR that is not scoped local or to a group."""
        return cls(DestinationKind.PUBLIC, "public", frozenset(), frozenset({Tlp.CLEAR}), level)

    @classmethod
    def parse(
        cls, raw: str, groups: Iterable[str] = (), *, level: PrivacyLevel | None = None
    ) -> Destination:
        """Read ``public``, ``group:NAME``, ``consumer:NAME`` or a peer id (as the CLI's ``--to``).

        Raises:
            ValidationError: the text is empty or names an empty group/consumer.
        """
        text = raw.strip()
        if text.lower() == "public":
            return cls.public(level=level)
        kind, sep, rest = text.partition(":")
        if sep and kind.lower() == "group":
            return cls.group(rest.strip(), level=level)
        if sep and kind.lower() == "consumer":
            return cls.consumer(rest.strip(), groups=groups, level=level)
        return cls.peer(text, groups, level=level)

    def describe(self) -> str:
        """``peer:ID``, ``group:NAME``, ``consumer:NAME`` or ``public``."""
        return "public" if self.kind is DestinationKind.PUBLIC else f"{self.kind.value}:{self.name}"


def _required(text: str, what: str) -> str:
    if not text.strip():
        raise ValidationError("destination", f"empty {what}")
    return text.strip()
