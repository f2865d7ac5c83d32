"""Rate limits: token buckets per client address and per registered key.

Buckets live in the process, so behind several replicas each replica limits on
its own (a client sees at most ``replicas x rate``); docs/registry.md explains
how to size them. The table of buckets is bounded: when it is full, buckets
that have refilled completely (idle clients) are dropped first, and if every
bucket is busy the oldest are dropped — forgetting a client only ever lets it
through sooner, it never blocks anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BUCKETS = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    """A sustained rate and a burst.

    Attributes:
        per_second: tokens added per second.
        burst: bucket size (requests allowed at once after idling).
    """

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_second > 0 and burst >= 1")


class TokenBuckets:
    """One token bucket per key (client address, node id).

    Args:
        rate: refill rate and bucket size.
        max_buckets: bound on the number of keys tracked.
    """

    def __init__(self, rate: Rate, *, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        self.rate = rate
        self._max = max_buckets
        self._buckets: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> float:
        """Take one token for ``key`` at time ``now`` (monotonic seconds).

        Returns:
            0.0 when allowed; otherwise the seconds until a token is available.
        """
        tokens, stamp = self._buckets.get(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + max(0.0, now - stamp) * self.rate.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate.per_second
        if key not in self._buckets and len(self._buckets) >= self._max:
            self._evict(now)
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    def _evict(self, now: float) -> None:
        full_after = self.rate.burst / self.rate.per_second
        idle = [key for key, (_, stamp) in self._buckets.items() if now - stamp >= full_after]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) >= self._max:
            # Dicts keep insertion order: drop the oldest quarter.
            for key in list(self._buckets)[: max(1, self._max // 4)]:
                del self._buckets[key]
