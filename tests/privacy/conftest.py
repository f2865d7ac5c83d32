"""Factories for privacy tests: indicators, policies and filters."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from dtim.model import Indicator, make_indicator
from dtim.privacy import PrivacyFilter, PrivacyLevel, PrivacyPolicy, SeededNoise

NOW = datetime(2026, 3, 1, 12, 34, 56, 789000, tzinfo=UTC)
OWN_NETWORKS = ("81.2.69.0/24", "2a02:ab00::/32")
OWN_DOMAINS = ("acme-univ.org",)
ORG_NAMES = ("Acme University", "acmeu")

MakeIndicator = Callable[..., Indicator]
MakeFilter = Callable[..., PrivacyFilter]


def policy(**overrides: Any) -> PrivacyPolicy:
    """A realistic node policy: own networks and domains, an org name, custom fields allowed."""
    base: dict[str, Any] = {
        "own_networks": OWN_NETWORKS,
        "own_domains": OWN_DOMAINS,
        "org_names": ORG_NAMES,
        "allow_custom_fields": True,
        "allowed_custom_fields": frozenset({"family", "note", "details"}),
    }
    base.update(overrides)
    return PrivacyPolicy(**base)


def indicator(value: str = "45.33.32.156", type_: str | None = None, **overrides: Any) -> Indicator:
    """An indicator made at :data:`NOW` (usable inside hypothesis tests)."""
    overrides.setdefault("now", NOW)
    return make_indicator(value, type_, **overrides)


@pytest.fixture
def make() -> MakeIndicator:
    """``make(value, **make_indicator overrides)`` at a fixed time."""
    return indicator


@pytest.fixture
def make_filter() -> MakeFilter:
    """``make_filter(**policy overrides)``: a filter with seeded noise."""

    def build(**overrides: Any) -> PrivacyFilter:
        return PrivacyFilter(policy(**overrides), noise=SeededNoise(random.Random(5)))

    return build


@pytest.fixture
def privacy(make_filter: MakeFilter) -> PrivacyFilter:
    """The default test filter (level moderate)."""
    return make_filter()


@pytest.fixture
def open_privacy(make_filter: MakeFilter) -> PrivacyFilter:
    """A filter at level open."""
    return make_filter(level=PrivacyLevel.OPEN)
