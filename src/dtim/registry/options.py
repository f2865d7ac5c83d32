"""How a registry behaves: plain values that ``service`` maps the settings onto."""

from __future__ import annotations

from dataclasses import dataclass, field

from dtim.registry.limits import Rate


@dataclass(frozen=True)
class RegistryOptions:
    """How a registry behaves (plain values; ``service`` maps settings onto them).

    Attributes:
        heartbeat_seconds: nodes refresh this often.
        missed_heartbeats: entries live this many heartbeats.
        signature_window_seconds: accepted clock difference of signed requests and statements.
        page_size: default list page size; ``max_page_size`` caps ``limit``.
        max_body_bytes: larger request bodies get 413.
        address_rate: per client address (all requests).
        key_rate: per registered key (registrations and withdrawals).
        verify_signatures: False only to measure the cost of verification (benchmarks).
        federate_with: other registries to pull signed entries from.
        federation_interval_seconds: pull period (default: a third of the heartbeat).
        list_cache_seconds: how long a replica reuses a served list page (0: never), so
            how far behind the database a list may be.
    """

    heartbeat_seconds: float = 300.0
    missed_heartbeats: int = 3
    signature_window_seconds: int = 300
    page_size: int = 500
    max_page_size: int = 1000
    max_body_bytes: int = 16 * 1024
    address_rate: Rate = field(default_factory=lambda: Rate(20.0, 200))
    key_rate: Rate = field(default_factory=lambda: Rate(1 / 30, 10))
    verify_signatures: bool = True
    federate_with: tuple[str, ...] = ()
    federation_interval_seconds: float | None = None
    list_cache_seconds: float = 1.0

    @property
    def entry_lifetime(self) -> int:
        """Lifetime nodes should give their statements: the missed heartbeats."""
        return int(self.heartbeat_seconds * self.missed_heartbeats)

    @property
    def max_lifetime(self) -> int:
        """Longest lifetime accepted (clock skew allowed on top of the entry lifetime)."""
        return self.entry_lifetime + self.signature_window_seconds

    @property
    def federation_interval(self) -> float:
        """Seconds between federation pulls."""
        return self.federation_interval_seconds or max(1.0, self.heartbeat_seconds / 3)
