"""A local observation of an indicator, with its evidence (which never leaves the node)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dtim.model.indicator import Indicator, JsonValue


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a person needs to judge a sighting: the raw lines and local names.

    It is stored encrypted and shown only to the local admin.
    """

    lines: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    details: dict[str, JsonValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, JsonValue]:
        """Plain JSON, for encryption at rest."""
        return {
            "lines": list(self.lines),
            "hosts": list(self.hosts),
            "users": list(self.users),
            "paths": list(self.paths),
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class Sighting:
    """A watcher's detection: the indicator it implies plus local evidence.

    Attributes:
        indicator: the indicator, already normalised, with confidence and tags.
        source: the watcher name (``ufw``, ``nginx_access`` ...).
        rule: the detection rule that fired (``ssh-bruteforce`` ...).
        observed_at: log time of the last event that made the rule fire.
        count: how many events the detection folds together.
        evidence: local context, never shared.
    """

    indicator: Indicator
    source: str
    rule: str
    observed_at: datetime
    count: int = 1
    evidence: Evidence = field(default_factory=Evidence)
