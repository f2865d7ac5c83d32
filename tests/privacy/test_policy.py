"""The privacy policy: validation that fails closed, naming the setting."""

from __future__ import annotations

from typing import Any

import pytest

from dtim.errors import ConfigError
from dtim.privacy import (
    DEFAULT_SIGHTINGS_BUCKETS,
    PrivacyLevel,
    PrivacyPolicy,
    TimestampPrecision,
    policy_from_mapping,
)


def test_defaults_are_the_seed_defaults() -> None:
    policy = PrivacyPolicy()
    assert policy.level is PrivacyLevel.MODERATE
    assert policy.timestamp_precision is TimestampPrecision.HOUR
    assert policy.dp_epsilon == 0
    assert policy.allow_custom_fields is False
    assert policy.sightings_buckets == DEFAULT_SIGHTINGS_BUCKETS
    assert hash(policy) == hash(PrivacyPolicy())


def test_level_and_precision_parse() -> None:
    assert PrivacyLevel.parse(" OPEN ") is PrivacyLevel.OPEN
    assert TimestampPrecision.parse("Day") is TimestampPrecision.DAY
    with pytest.raises(ConfigError, match=r"privacy\.level.*unknown privacy level 'loose'"):
        PrivacyLevel.parse("loose")
    with pytest.raises(ConfigError, match=r"privacy\.timestamp_precision"):
        TimestampPrecision.parse("week")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"own_networks": ("10.0.0.0/33",)}, "privacy.own_networks"),
        ({"own_domains": ("bad domain",)}, "privacy.own_domains"),
        ({"extra_warninglist_entries": ("not a/thing",)}, "privacy.warninglist_entries"),
        ({"dp_epsilon": -1.0}, "privacy.dp_epsilon"),
        ({"dp_epsilon": float("nan")}, "privacy.dp_epsilon"),
        ({"sightings_buckets": (2, 5)}, "privacy.sightings_buckets"),
        ({"sightings_buckets": (1, 5, 5)}, "privacy.sightings_buckets"),
        ({"sightings_buckets": ()}, "privacy.sightings_buckets"),
        ({"org_names": ("  ",)}, "privacy.org_names"),
    ],
)
def test_bad_policies_fail_closed(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PrivacyPolicy(**overrides)
    assert caught.value.key == key


def test_no_buckets_is_allowed_with_noise() -> None:
    assert PrivacyPolicy(sightings_buckets=(), dp_epsilon=1.0).sightings_buckets == ()


def test_extra_entries_accept_networks_and_domains() -> None:
    policy = PrivacyPolicy(extra_warninglist_entries=("192.0.2.0/24", "partner.example.net"))
    assert len(policy.extra_warninglist_entries) == 2


def test_level_for_uses_the_peer_override() -> None:
    policy = PrivacyPolicy(peer_levels=(("close-friend", PrivacyLevel.OPEN),))
    assert policy.level_for("close-friend") is PrivacyLevel.OPEN
    assert policy.level_for("stranger") is PrivacyLevel.MODERATE
    assert policy.level_for(None) is PrivacyLevel.MODERATE


def test_policy_from_mapping_reads_a_config_section() -> None:
    policy = policy_from_mapping(
        {
            "level": "open",
            "allow_custom_fields": True,
            "allowed_custom_fields": ["family"],
            "peer_levels": {"peer-b": "strict"},
            "own_networks": ["81.2.69.0/24"],
            "own_domains": "acme.org",
            "org_names": ["Acme"],
            "redact_terms": ["fs01"],
            "warninglist_entries": ["198.51.100.7"],
            "warninglists": ["lists/partners.txt"],
            "disabled_warninglists": ["top-domains"],
            "timestamp_precision": "day",
            "dp_epsilon": 1,
            "sightings_buckets": [1, 10],
            "unknown": "ignored",
        }
    )
    assert policy.level is PrivacyLevel.OPEN
    assert policy.allowed_custom_fields == frozenset({"family"})
    assert policy.peer_levels == (("peer-b", PrivacyLevel.STRICT),)
    assert policy.own_domains == ("acme.org",)
    assert policy.extra_warninglist_entries == ("198.51.100.7",)
    assert policy.disabled_warninglists == ("top-domains",)
    assert policy.timestamp_precision is TimestampPrecision.DAY
    assert policy.dp_epsilon == 1.0
    assert policy.sightings_buckets == (1, 10)
    assert policy_from_mapping({}) == PrivacyPolicy()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"level": 3}, "privacy.level"),
        ({"level": "loose"}, "privacy.level"),
        ({"timestamp_precision": 1}, "privacy.timestamp_precision"),
        ({"allow_custom_fields": "yes"}, "privacy.allow_custom_fields"),
        ({"dp_epsilon": True}, "privacy.dp_epsilon"),
        ({"dp_epsilon": "1"}, "privacy.dp_epsilon"),
        ({"peer_levels": ["x"]}, "privacy.peer_levels"),
        ({"peer_levels": {"p": 1}}, "privacy.peer_levels"),
        ({"peer_levels": {"p": "loose"}}, "privacy.peer_levels.p"),
        ({"sightings_buckets": "1,2"}, "privacy.sightings_buckets"),
        ({"sightings_buckets": [1, True]}, "privacy.sightings_buckets"),
        ({"own_networks": [1]}, "privacy.own_networks"),
        ({"org_names": {"a": 1}}, "privacy.org_names"),
    ],
)
def test_policy_from_mapping_names_the_bad_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy_from_mapping(data)
    assert caught.value.key == key
