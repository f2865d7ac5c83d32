"""Patterns for every type are valid and read back; what cannot be read is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stix2patterns.validator import run_validator

from dtim.errors import StixError
from dtim.model import make_indicator
from dtim.stix.patterns import (
    PatternValue,
    UnsupportedPatternError,
    build_pattern,
    escape,
    parse_pattern,
)
from tests.stix.conftest import NOW, SAMPLES


@pytest.mark.parametrize(("value", "type_"), SAMPLES)
def test_every_type_gives_a_valid_pattern_that_reads_back(value: str, type_: str | None) -> None:
    indicator = make_indicator(value, type_, now=NOW)
    pattern = build_pattern(indicator.type, indicator.value)
    assert run_validator(pattern, stix_version="2.1") == []
    assert parse_pattern(pattern) == [PatternValue(indicator.type, indicator.value)]


def test_hash_keys_and_observable_names() -> None:
    assert build_pattern("sha256", "ab" * 32) == f"[file:hashes.'SHA-256' = '{'ab' * 32}']"
    assert build_pattern("sha1", "ab" * 20).startswith("[file:hashes.'SHA-1' = ")
    assert build_pattern("md5", "ab" * 16).startswith("[file:hashes.'MD5' = ")
    assert build_pattern("sha512", "ab" * 64).startswith("[file:hashes.'SHA-512' = ")
    assert build_pattern("cidr", "192.0.2.0/24") == "[ipv4-addr:value = '192.0.2.0/24']"
    assert build_pattern("cidr", "2001:db8::/32") == "[ipv6-addr:value = '2001:db8::/32']"
    assert build_pattern("email", "a@b.example") == "[email-addr:value = 'a@b.example']"


def test_quotes_and_backslashes_are_escaped() -> None:
    assert escape("a'b\\c") == "a\\'b\\\\c"
    pattern = build_pattern("url", "http://x.example/it's\\here")
    assert pattern == "[url:value = 'http://x.example/it\\'s\\\\here']"
    assert run_validator(pattern, stix_version="2.1") == []
    assert parse_pattern(pattern)[0].value == "http://x.example/it's\\here"


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40))
def test_any_text_round_trips_through_a_custom_type_pattern(text: str) -> None:
    pattern = build_pattern("ticket_id", text)
    assert run_validator(pattern, stix_version="2.1") == []
    assert parse_pattern(pattern) == [PatternValue("ticket-id", text)]


def test_or_of_comparisons_splits_into_values() -> None:
    pattern = (
        "[ipv4-addr:value = '203.0.113.1' OR domain-name:value = 'a.example']"
        " OR [file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"
    )
    assert parse_pattern(pattern) == [
        PatternValue("ipv4", "203.0.113.1"),
        PatternValue("domain", "a.example"),
        PatternValue("md5", "d41d8cd98f00b204e9800998ecf8427e"),
    ]


def test_issubset_on_an_address_is_a_network() -> None:
    assert parse_pattern("[ipv4-addr:value ISSUBSET '198.51.100.0/24']") == [
        PatternValue("cidr", "198.51.100.0/24")
    ]


def test_email_sender_is_an_email_indicator() -> None:
    assert parse_pattern("[email-message:from_ref.value = 'x@evil.example']") == [
        PatternValue("email", "x@evil.example")
    ]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.example']", "AND of comparisons"),
        (
            "[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'a.example']",
            "AND of observations",
        ),
        (
            "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'a.example']",
            "FOLLOWEDBY",
        ),
        ("[ipv4-addr:value = '1.2.3.4'] REPEATS 5 TIMES", "REPEATS"),
        ("[ipv4-addr:value = '1.2.3.4'] WITHIN 60 SECONDS", "WITHIN"),
        ("[ipv4-addr:value != '1.2.3.4']", "negated"),
        ("[url:value LIKE 'http://%']", "LIKE"),
        ("[url:value MATCHES '^http']", "MATCHES"),
        ("[file:size > 10]", "ordering"),
        ("[file:name = 'x.exe']", "not an indicator value"),
        ("[file:hashes.'SHA3-256' = 'aa']", "hash algorithm"),
        ("[process:name = 'x']", "not an indicator value"),
        ("[mutex:value = 'x']", "object type"),
    ],
)
def test_unsupported_patterns_say_why(pattern: str, reason: str) -> None:
    with pytest.raises(UnsupportedPatternError) as info:
        parse_pattern(pattern)
    assert reason in info.value.reason


def test_invalid_pattern_is_a_stix_error() -> None:
    with pytest.raises(StixError, match="invalid STIX pattern"):
        parse_pattern("[ipv4-addr:value = ")
