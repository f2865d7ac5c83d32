"""Coarse timestamps, buckets and Laplace noise (checked statistically)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.errors import ValidationError
from dtim.privacy import (
    DEFAULT_SIGHTINGS_BUCKETS,
    KeyedNoise,
    NoiseSource,
    SeededNoise,
    TimestampPrecision,
    bucket,
    coarsen,
    noisy_count,
)
from dtim.privacy.noise import laplace_cdf, laplace_from_uniform

MOMENT = datetime(2026, 3, 1, 12, 34, 56, 789123, tzinfo=UTC)


@pytest.mark.parametrize(
    ("precision", "expected"),
    [
        (TimestampPrecision.SECOND, datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)),
        (TimestampPrecision.MINUTE, datetime(2026, 3, 1, 12, 34, tzinfo=UTC)),
        (TimestampPrecision.HOUR, datetime(2026, 3, 1, 12, tzinfo=UTC)),
        (TimestampPrecision.DAY, datetime(2026, 3, 1, tzinfo=UTC)),
    ],
)
def test_coarsen(precision: TimestampPrecision, expected: datetime) -> None:
    assert coarsen(MOMENT, precision) == expected
    assert coarsen(expected, precision) == expected
    assert coarsen(MOMENT.replace(tzinfo=None), precision) == expected
    assert coarsen(MOMENT, precision).tzinfo is not None


def test_coarsen_works_in_utc_whatever_the_zone() -> None:
    local = MOMENT.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert coarsen(local, TimestampPrecision.HOUR) == datetime(2026, 3, 1, 12, tzinfo=UTC)


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from(list(TimestampPrecision)),
)
def test_coarsen_floors_and_is_idempotent(moment: datetime, precision: TimestampPrecision) -> None:
    aware = moment.replace(tzinfo=UTC)
    floored = coarsen(aware, precision)
    assert floored <= aware
    assert aware - floored < timedelta(days=1 if precision is TimestampPrecision.DAY else 1 / 24)
    assert coarsen(floored, precision) == floored


def test_bucket() -> None:
    buckets = DEFAULT_SIGHTINGS_BUCKETS
    assert [bucket(n, buckets) for n in (1, 2, 4, 5, 13, 99, 100, 12345)] == [
        1,
        2,
        2,
        5,
        10,
        50,
        100,
        10000,
    ]
    assert bucket(0, buckets) == 1
    assert bucket(7, ()) == 7


@given(st.integers(1, 10**6))
def test_bucket_is_idempotent(count: int) -> None:
    once = bucket(count, DEFAULT_SIGHTINGS_BUCKETS)
    assert bucket(once, DEFAULT_SIGHTINGS_BUCKETS) == once
    assert once <= count


def test_laplace_helpers() -> None:
    assert laplace_from_uniform(0.5, 2.0) == 0.0
    assert laplace_from_uniform(0.25, 1.0) == pytest.approx(math.log(0.5))
    assert laplace_from_uniform(0.75, 1.0) == pytest.approx(-math.log(0.5))
    assert laplace_cdf(0.0, 1.0) == 0.5
    assert laplace_cdf(-1.0, 1.0) == pytest.approx(0.5 * math.exp(-1))
    assert laplace_cdf(1.0, 1.0) == pytest.approx(1 - 0.5 * math.exp(-1))


def _ks_statistic(samples: list[float], scale: float) -> float:
    """Kolmogorov-Smirnov distance between the samples and Laplace(0, scale)."""
    ordered = sorted(samples)
    n = len(ordered)
    return max(
        max(abs(laplace_cdf(x, scale) - i / n), abs(laplace_cdf(x, scale) - (i + 1) / n))
        for i, x in enumerate(ordered)
    )


SAMPLES = 20_000
# Critical value of the KS test at alpha = 0.001 for large n: 1.95 / sqrt(n).
KS_CRITICAL = 1.95 / math.sqrt(SAMPLES)


@pytest.mark.parametrize(
    "source",
    [SeededNoise(random.Random(2026)), KeyedNoise(b"k" * 32)],
    ids=["seeded", "keyed"],
)
@pytest.mark.parametrize("scale", [0.5, 1.0, 4.0])
def test_noise_is_laplace(source: NoiseSource, scale: float) -> None:
    samples = [source.laplace(scale, f"indicator-{n}") for n in range(SAMPLES)]
    mean = sum(samples) / SAMPLES
    mean_abs = sum(abs(x) for x in samples) / SAMPLES
    # Laplace(0, b): mean 0 with standard deviation sqrt(2) b; E|X| = b with standard deviation b.
    assert abs(mean) < 5 * math.sqrt(2) * scale / math.sqrt(SAMPLES)
    assert abs(mean_abs - scale) < 5 * scale / math.sqrt(SAMPLES)
    assert _ks_statistic(samples, scale) < KS_CRITICAL


def test_the_ks_check_would_catch_a_wrong_scale() -> None:
    source = SeededNoise(random.Random(7))
    samples = [source.laplace(2.0, "x") for _ in range(SAMPLES)]
    assert _ks_statistic(samples, 1.0) > KS_CRITICAL


def test_keyed_noise_repeats_per_key_and_differs_per_secret() -> None:
    first = KeyedNoise(b"a" * 32)
    assert first.laplace(1.0, "id:1") == first.laplace(1.0, "id:1")
    assert first.laplace(1.0, "id:1") != first.laplace(1.0, "id:2")
    assert KeyedNoise(b"b" * 32).laplace(1.0, "id:1") != first.laplace(1.0, "id:1")
    assert KeyedNoise().laplace(1.0, "x") != KeyedNoise().laplace(1.0, "x")  # random secrets


class _Zeroes(random.Random):
    def __init__(self) -> None:
        super().__init__(1)
        self.calls = 0

    def random(self) -> float:
        self.calls += 1
        return 0.0 if self.calls == 1 else 0.5


def test_seeded_noise_never_feeds_zero_to_the_inverse_cdf() -> None:
    assert SeededNoise(_Zeroes()).laplace(1.0, "x") == 0.0


def test_noisy_count() -> None:
    source = SeededNoise(random.Random(11))
    counts = [noisy_count(1000, 0.5, source, "id") for _ in range(SAMPLES)]
    mean = sum(counts) / SAMPLES
    assert abs(mean - 1000) < 5 * math.sqrt(2) * 2.0 / math.sqrt(SAMPLES) + 0.01
    assert all(isinstance(c, int) for c in counts)
    assert min(noisy_count(1, 0.01, source, "id", minimum=1) for _ in range(200)) == 1
    keyed = KeyedNoise(b"s" * 32)
    assert noisy_count(50, 1.0, keyed, "id") == noisy_count(50, 1.0, keyed, "id")
    for bad in (0.0, -1.0):
        with pytest.raises(ValidationError):
            noisy_count(5, bad, source, "id")
