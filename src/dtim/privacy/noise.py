"""Timing and counts: coarse timestamps, sightings buckets, Laplace noise.

Timestamps are floored to ``privacy.timestamp_precision`` (the hour by default)
so a peer cannot line a report up with its own logs to guess who saw it first.
``valid_until`` is floored too: aging derives it from ``last_seen``, so an exact
value would give ``last_seen`` away.

Differential privacy budget (``privacy.dp_epsilon`` = ε, 0 = off)
------------------------------------------------------------------
A released count (an indicator's sightings; the distinct-reporter count the
gossip layer computes) gets Laplace noise of scale ``1/ε``: with sensitivity 1
(one more event, or one more reporter, changes the count by 1) each release is
ε-differentially private for a single event or reporter. Budget accounting:

* the noise is derived from a keyed hash of (indicator id, true count), not drawn
  afresh, so sending the same count to many peers or in many rounds is *one*
  release and costs ε once: averaging repeated answers learns nothing more;
* each change of the true count is a new release: an indicator whose count
  changes k times has spent k·ε over its life (sequential composition);
* sightings and distinct-reporter counts are separate releases: 2ε per change
  when both are published;
* a detection that folds n events into one sighting changes the count by n,
  so the guarantee covers one event, not one detection of n events.

With noise on, the noisy count is rounded, floored at the minimum (1 for
sightings) and then bucketed when buckets are configured; both are
post-processing and cost no budget. ε = 1 is a reasonable start; smaller is
more private and noisier.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import random
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from typing import Protocol

from dtim.errors import ValidationError
from dtim.privacy.policy import TimestampPrecision

_UNIT_SECONDS = {
    TimestampPrecision.SECOND: 1,
    TimestampPrecision.MINUTE: 60,
    TimestampPrecision.HOUR: 3600,
    TimestampPrecision.DAY: 86400,
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLOORED: dict[float, datetime] = {}
_CACHE_LIMIT = 10_000


def coarsen(moment: datetime, precision: TimestampPrecision) -> datetime:
    """Floor ``moment`` (naive means UTC) to ``precision`` in UTC (idempotent)."""
    return floor_seconds(moment, _UNIT_SECONDS[precision])


def floor_seconds(moment: datetime, unit: int) -> datetime:
    """Floor ``moment`` (naive means UTC) to a multiple of ``unit`` seconds since the epoch.

    Floored instants repeat a lot (every report of the same hour), so they are
    cached: this runs once per timestamp of everything that leaves.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # The number of whole units, as an integral float (hashes like the int).
    units = moment.timestamp() // unit
    cached = _FLOORED.get(units)
    if cached is None:
        if len(_FLOORED) >= _CACHE_LIMIT:
            _FLOORED.clear()
        cached = _FLOORED[units] = _EPOCH + timedelta(seconds=int(units) * unit)
    return cached


def unit_seconds(precision: TimestampPrecision) -> int:
    """Length of one ``precision`` unit in seconds."""
    return _UNIT_SECONDS[precision]


def bucket(count: int, buckets: tuple[int, ...]) -> int:
    """The lower bound of the bucket ``count`` falls in (``count`` itself without buckets).

    ``bucket(bucket(n)) == bucket(n)``: a lower bound is its own bucket.
    """
    if not buckets:
        return count
    return buckets[max(0, bisect_right(buckets, count) - 1)]


def laplace_from_uniform(uniform: float, scale: float) -> float:
    """Inverse CDF of Laplace(0, scale) at ``uniform`` in the open interval (0, 1)."""
    if uniform < 0.5:
        return scale * math.log(2.0 * uniform)
    return -scale * math.log(2.0 * (1.0 - uniform))


def laplace_cdf(x: float, scale: float) -> float:
    """CDF of Laplace(0, scale) (used by the statistical tests)."""
    if x < 0:
        return 0.5 * math.exp(x / scale)
    return 1.0 - 0.5 * math.exp(-x / scale)


class NoiseSource(Protocol):
    """Where Laplace noise comes from; ``key`` names what is being noised."""

    def laplace(self, scale: float, key: str) -> float:
        """One draw of Laplace(0, scale) for ``key``."""
        ...


class KeyedNoise:
    """Deterministic noise: HMAC-SHA256(secret, key) mapped through the inverse CDF.

    The same key always gets the same noise, so re-sending a count is no new
    release (see the module docstring). Keep the secret for the node's life;
    a new secret (the default on each start) re-randomises every count once.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else os.urandom(32)

    def laplace(self, scale: float, key: str) -> float:
        """The noise for ``key``."""
        digest = hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).digest()
        # 53 bits: a float's mantissa; the half-step keeps the value strictly inside (0, 1).
        uniform = ((int.from_bytes(digest[:8], "big") >> 11) + 0.5) / 2.0**53
        return laplace_from_uniform(uniform, scale)


class SeededNoise:
    """Noise from a :class:`random.Random` (tests, simulations); ignores the key."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def laplace(self, scale: float, key: str) -> float:
        """A fresh draw."""
        uniform = self._rng.random()
        while uniform == 0.0:  # the inverse CDF is infinite at 0
            uniform = self._rng.random()
        return laplace_from_uniform(uniform, scale)


def noisy_count(count: int, epsilon: float, source: NoiseSource, key: str, minimum: int = 0) -> int:
    """``count`` plus Laplace(1/ε) noise, rounded and floored at ``minimum``.

    Use it for distinct-reporter counts too (``minimum=0``), with a key naming
    the indicator and the kind of count.

    Raises:
        ValidationError: ``epsilon`` is not positive.
    """
    if not epsilon > 0:
        raise ValidationError("dp_epsilon", f"noise needs epsilon > 0, got {epsilon!r}")
    noise = source.laplace(1.0 / epsilon, f"{key}:{count}")
    return max(minimum, round(count + noise))
