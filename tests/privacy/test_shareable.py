"""Shareable: only the filter can make one, and its JSON has exactly the level's keys."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from dtim.errors import PrivacyError
from dtim.model import Tlp
from dtim.privacy import (
    LEVEL_FIELDS,
    Destination,
    PrivacyFilter,
    PrivacyLevel,
    Shareable,
    TimestampPrecision,
)
from dtim.privacy import noise as noise_module
from dtim.privacy import shareable as shareable_module
from tests.privacy.conftest import MakeFilter, MakeIndicator

PEER = Destination.peer("peer-a")


def test_cannot_be_constructed_outside_the_filter() -> None:
    with pytest.raises(PrivacyError):
        Shareable("id", "ipv4", "10.0.0.1", Tlp.GREEN, PrivacyLevel.STRICT)


def test_cannot_be_modified_or_copied_into_a_new_one(
    privacy: PrivacyFilter, make: MakeIndicator
) -> None:
    shared = privacy.share(make(), PEER)
    assert shared is not None
    with pytest.raises(PrivacyError):
        shared._replace(value="10.0.0.1")
    with pytest.raises(PrivacyError):
        Shareable._make(list(shared))
    with pytest.raises(PrivacyError):
        pickle.dumps(shared)
    with pytest.raises(AttributeError):
        shared.value = "10.0.0.1"  # type: ignore[misc]  # immutability is the point
    assert copy.copy(shared) is shared
    assert copy.deepcopy(shared) is shared


def test_exact_field_sets() -> None:
    assert LEVEL_FIELDS[PrivacyLevel.STRICT] == ("id", "type", "value", "tlp")
    assert LEVEL_FIELDS[PrivacyLevel.MODERATE] == (
        "id", "type", "value", "tlp", "confidence", "first_seen", "last_seen", "valid_until",
    )  # fmt: skip
    assert LEVEL_FIELDS[PrivacyLevel.OPEN] == (
        *LEVEL_FIELDS[PrivacyLevel.MODERATE], "tags", "sightings", "custom_fields",
    )  # fmt: skip


@pytest.mark.parametrize("level", list(PrivacyLevel))
def test_to_bytes_matches_the_generic_encoder(
    make_filter: MakeFilter, make: MakeIndicator, level: PrivacyLevel
) -> None:
    privacy = make_filter(level=level)
    indicator = make(
        'http://evil.xyz/\u00fc"q\\x',
        tags=['say "hi"', "ünïcode", "tab\\x"],
        custom_fields={"details": {"b": [1, 2.5, None, True], "a": 'ü"x'}, "family": "mirai"},
    )
    shared = privacy.share(indicator, PEER, valid_until=datetime(2030, 1, 1, tzinfo=UTC))
    assert shared is not None
    generic = json.dumps(
        shared.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert shared.to_bytes() == generic.encode()


def test_to_bytes_is_compact_sorted_json(open_privacy: PrivacyFilter, make: MakeIndicator) -> None:
    shared = open_privacy.share(make(tags=["mirai"], custom_fields={"family": "mirai"}), PEER)
    assert shared is not None
    raw = shared.to_bytes()
    assert json.loads(raw) == shared.to_json()
    assert list(json.loads(raw)) == sorted(shared.to_json())
    assert b" " not in raw
    assert shared.custom_fields_json() == {"family": "mirai"}


def test_timestamp_text_cache_stays_bounded(make_filter: MakeFilter, make: MakeIndicator) -> None:
    privacy = make_filter(timestamp_precision=TimestampPrecision.SECOND)
    base = datetime(2020, 1, 1, tzinfo=UTC)
    texts = set()
    for second in range(10_050):
        moment = base + timedelta(seconds=second)
        shared = privacy.share(make(first_seen=moment, last_seen=moment), PEER)
        assert shared is not None
        texts.add(shared.to_json()["first_seen"])
        assert shared.to_bytes()
    assert len(texts) == 10_050
    assert len(shareable_module._ISO) <= 10_000
    assert len(shareable_module._ISO_JSON) <= 10_000
    assert len(noise_module._FLOORED) <= 10_000
