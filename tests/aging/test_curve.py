"""The decay curve and decay models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.aging import DEFAULT_LIFETIME_DAYS, DecayModel, DecayModels, score, whole
from dtim.errors import ValidationError

DAY = 86400.0
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_curve_matches_the_misp_formula() -> None:
    # base * (1 - (t/L)^(1/delta)): with delta 2 a quarter of the life leaves half.
    assert score(80, 0.25 * 30 * DAY, 30 * DAY, 2.0) == pytest.approx(40.0)
    assert score(80, 0.25 * 30 * DAY, 30 * DAY, 1.0) == pytest.approx(60.0)


def test_curve_starts_at_base_and_ends_at_zero() -> None:
    assert score(70, 0, DAY, 2) == 70.0
    assert score(70, -5, DAY, 2) == 70.0  # clock skew: a sighting a little in the future
    assert score(70, DAY, DAY, 2) == 0.0
    assert score(70, 10 * DAY, DAY, 2) == 0.0


@given(
    base=st.integers(0, 100),
    lifetime=st.floats(1, 1e9),
    delta=st.floats(0.1, 10),
    a=st.floats(0, 1),
    b=st.floats(0, 1),
)
def test_curve_never_rises_and_stays_in_range(
    base: int, lifetime: float, delta: float, a: float, b: float
) -> None:
    early, late = sorted((a * lifetime, b * lifetime))
    first, second = score(base, early, lifetime, delta), score(base, late, lifetime, delta)
    assert 0 <= second <= first <= base


@pytest.mark.parametrize(
    ("base", "lifetime", "delta"),
    [(-1, DAY, 2), (101, DAY, 2), (float("nan"), DAY, 2), (50, 0, 2), (50, DAY, 0)],
)
def test_curve_refuses_nonsense(base: float, lifetime: float, delta: float) -> None:
    with pytest.raises(ValidationError):
        score(base, 1, lifetime, delta)


def test_whole_rounds_up_so_zero_means_expired() -> None:
    assert whole(0.0) == 0
    assert whole(0.01) == 1
    assert whole(39.0000000001) == 39
    assert whole(39.2) == 40


def test_default_lifetimes() -> None:
    model = DecayModel()
    assert model.lifetime("ipv4") == timedelta(days=30)
    assert model.lifetime("cidr") == timedelta(days=30)
    assert model.lifetime("url") == timedelta(days=60)
    assert model.lifetime("domain") == timedelta(days=180)
    assert model.lifetime("sha256") == timedelta(days=365)
    assert model.lifetime("email") == timedelta(days=90)
    assert model.lifetime("my-custom-type") == timedelta(days=90)
    assert model.delta == 2.0
    assert set(DEFAULT_LIFETIME_DAYS) >= {
        "ipv4",
        "ipv6",
        "cidr",
        "url",
        "domain",
        "md5",
        "sha1",
        "sha512",
    }


def test_model_scores_expiry_and_valid_until() -> None:
    model = DecayModel()
    assert model.confidence(80, "ipv4", T0, T0) == 80
    assert model.confidence(80, "ipv4", T0, T0 + timedelta(days=7.5)) == 40
    assert model.valid_until("ipv4", T0) == T0 + timedelta(days=30)
    assert not model.expired("ipv4", T0, T0 + timedelta(days=30) - timedelta(seconds=1))
    assert model.expired("ipv4", T0, T0 + timedelta(days=30))
    assert model.confidence(80, "ipv4", T0, T0 + timedelta(days=30)) == 0
    # The hash outlives the address seen at the same moment.
    later = T0 + timedelta(days=100)
    assert model.confidence(80, "sha256", T0, later) > 0 == model.confidence(80, "ipv4", T0, later)


def test_from_days_overrides_defaults_and_checks_values() -> None:
    model = DecayModel.from_days({"ipv4": 7, "onion": 3}, name="short", delta=1.0, fallback_days=10)
    assert model.lifetime("ipv4") == timedelta(days=7)
    assert model.lifetime("onion") == timedelta(days=3)
    assert model.lifetime("domain") == timedelta(days=180)
    assert model.lifetime("other") == timedelta(days=10)
    for bad in ({"ipv4": 0}, {"ipv4": -1}):
        with pytest.raises(ValidationError, match=r"aging\.ipv4"):
            DecayModel.from_days(bad)
    with pytest.raises(ValidationError, match="fallback"):
        DecayModel.from_days({}, fallback_days=0)


def test_model_refuses_bad_construction() -> None:
    with pytest.raises(ValidationError):
        DecayModel(name="")
    with pytest.raises(ValidationError):
        DecayModel(delta=0)
    with pytest.raises(ValidationError):
        DecayModel(lifetimes={"ipv4": timedelta(0)})


def test_models_are_stored_by_name_so_a_change_rescores() -> None:
    models = DecayModels()
    assert models.names() == {"default"}
    before = models.get("default").confidence(80, "ipv4", T0, T0 + timedelta(days=10))
    models.put(DecayModel.from_days({"ipv4": 300}))
    after = models.get("default").confidence(80, "ipv4", T0, T0 + timedelta(days=10))
    assert after > before
    with pytest.raises(ValidationError, match="unknown decay model 'nope'"):
        models.get("nope")
    assert DecayModels([DecayModel.from_days({}, name="x")]).names() == {"default", "x"}
