"""Signed statements: what a node says about itself, and what consumers accept."""

from __future__ import annotations

import base64
from dataclasses import replace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.crypto.bodysig import canonical_body
from dtim.crypto.identity import NodeIdentity, fingerprint_of
from dtim.errors import SignatureError, ValidationError
from dtim.registry.statements import (
    MAX_STATEMENT_LIFETIME,
    Profile,
    SignedStatement,
    Statement,
    StatementKind,
    normalize_endpoint,
    parse_statement,
    sign_statement,
    verify_item,
    verify_statement,
)

NOW = 1_780_000_000
ALICE = NodeIdentity.generate()
MALLORY = NodeIdentity.generate()


def entry(identity: NodeIdentity = ALICE, **changes: object) -> Statement:
    base = Statement(
        StatementKind.ENTRY, identity.public_key_b64, "https://alice.example:3030", NOW, NOW + 900
    )
    return replace(base, **changes)  # type: ignore[arg-type]  # test factory: fields by name


def check(item: object, now: int = NOW) -> SignedStatement:
    return verify_item(item, now=now, max_lifetime=MAX_STATEMENT_LIFETIME, skew=300)


def test_an_item_verifies_after_a_json_round_trip() -> None:
    signed = sign_statement(entry(), ALICE)
    served = orjson.loads(signed.document())
    assert set(served) == {"endpoint", "public_key", "node_id", "statement", "signature"}
    assert served["endpoint"] == "https://alice.example:3030"
    assert served["public_key"] == ALICE.public_key_b64
    assert served["node_id"] == ALICE.node_id
    again = verify_item(served, now=NOW, max_lifetime=900, skew=0)
    assert again.statement == signed.statement
    assert again.statement.fingerprint == fingerprint_of(ALICE.public_key_raw)


def test_nothing_but_endpoint_key_and_time_is_published_by_default() -> None:
    statement = sign_statement(entry(), ALICE).raw
    assert set(statement) == {
        "type",
        "version",
        "public_key",
        "endpoint",
        "issued_at",
        "expires_at",
    }


def test_metadata_is_published_only_when_chosen() -> None:
    profile = Profile(display_name="Uni CSIRT", contact="csirt@uni.example", sectors=("education",))
    signed = sign_statement(entry(profile=profile), ALICE)
    assert signed.raw["metadata"] == {
        "display_name": "Uni CSIRT",
        "contact": "csirt@uni.example",
        "sectors": ["education"],
    }
    assert check(orjson.loads(signed.document())).statement.profile == profile


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("statement", "endpoint"), "https://mallory.example:3030"),
        (("statement", "issued_at"), NOW + 1),
        (("statement", "expires_at"), NOW + 901),
        (("statement", "public_key"), MALLORY.public_key_b64),
    ],
)
def test_a_tampered_statement_does_not_verify(path: tuple[str, str], value: object) -> None:
    item = orjson.loads(sign_statement(entry(), ALICE).document())
    item[path[0]][path[1]] = value
    if path[1] in {"endpoint", "public_key"}:
        item[path[1]] = value  # a careful forger keeps the copies consistent
    with pytest.raises(SignatureError, match="bad signature"):
        check(item)


@pytest.mark.parametrize("field", ["endpoint", "public_key", "node_id"])
def test_copies_beside_the_statement_must_match_it(field: str) -> None:
    item = orjson.loads(sign_statement(entry(), ALICE).document())
    item[field] = {
        "endpoint": "https://mallory.example:3030",
        "public_key": MALLORY.public_key_b64,
        "node_id": MALLORY.node_id,
    }[field]
    with pytest.raises(SignatureError, match="does not match"):
        check(item)


def test_a_statement_about_a_key_signed_by_another_key_is_refused() -> None:
    raw = entry(ALICE).to_json()
    forged = base64.b64encode(MALLORY.sign(canonical_body(raw))).decode()
    with pytest.raises(SignatureError, match="bad signature"):
        verify_statement(raw, forged, now=NOW, max_lifetime=900, skew=0)
    with pytest.raises(SignatureError, match="own key"):
        sign_statement(entry(ALICE), MALLORY)


def test_expired_future_and_long_lived_statements_are_refused() -> None:
    signed = sign_statement(entry(), ALICE)
    with pytest.raises(ValidationError, match="expired"):
        verify_statement(signed.raw, signed.signature, now=NOW + 900, max_lifetime=900, skew=300)
    with pytest.raises(ValidationError, match="future"):
        verify_statement(signed.raw, signed.signature, now=NOW - 301, max_lifetime=900, skew=300)
    with pytest.raises(ValidationError, match="lifetime"):
        verify_statement(signed.raw, signed.signature, now=NOW, max_lifetime=899, skew=300)
    assert verify_statement(signed.raw, signed.signature, now=NOW + 899, max_lifetime=900, skew=0)


@pytest.mark.parametrize(
    "signature", [None, "", "not base64!", base64.b64encode(b"x" * 63).decode()]
)
def test_malformed_signatures_are_refused(signature: object) -> None:
    with pytest.raises(SignatureError, match="signature"):
        verify_statement(entry().to_json(), signature, now=NOW, max_lifetime=900, skew=0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "dtim-something"}, "statement.type"),
        ({"version": 2}, "statement.version"),
        ({"version": True}, "statement.version"),
        ({"public_key": "AAAA"}, "statement.public_key"),
        ({"endpoint": "http://alice.example"}, "endpoint"),
        ({"endpoint": "https://Alice.example:3030/"}, "statement.endpoint"),
        ({"issued_at": "now"}, "statement.issued_at"),
        ({"expires_at": NOW}, "statement.expires_at"),
        ({"metadata": {}}, "statement.metadata"),
        ({"metadata": {"sectors": ["Not A Sector"]}}, "metadata.sectors"),
        ({"metadata": {"motto": "x"}}, "statement.metadata"),
        ({"extra": 1}, "statement"),
    ],
)
def test_malformed_statements_name_the_field(change: dict[str, object], field: str) -> None:
    raw = {**entry().to_json(), **change}
    with pytest.raises(ValidationError) as caught:
        parse_statement(raw)
    assert caught.value.field == field


def test_a_withdrawal_carries_no_metadata() -> None:
    raw = {**entry(kind=StatementKind.WITHDRAWAL).to_json(), "metadata": {"display_name": "x"}}
    with pytest.raises(ValidationError, match="no metadata"):
        parse_statement(raw)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("https://Node.Example:3030/", "https://node.example:3030"),
        ("  https://node.example  ", "https://node.example"),
        ("https://[2001:DB8::1]:3030", "https://[2001:db8::1]:3030"),
        ("https://node.example/dtim/", "https://node.example/dtim"),
    ],
)
def test_endpoints_are_normalised(raw: str, canonical: str) -> None:
    assert normalize_endpoint(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "http://node.example",
        "https://",
        "https://user:pw@node.example",
        "https://node.example/?x=1",
        "https://node.example/#top",
        "https://node.example:99999",
        "https://" + "a" * 260,
        "",
    ],
)
def test_bad_endpoints_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        normalize_endpoint(raw)


def test_a_withdrawal_wins_a_tie_and_newer_wins_always() -> None:
    listed = sign_statement(entry(), ALICE)
    gone = sign_statement(entry(kind=StatementKind.WITHDRAWAL), ALICE)
    newer = sign_statement(entry(issued_at=NOW + 1, expires_at=NOW + 901), ALICE)
    assert listed.order_key() < gone.order_key() < newer.order_key()


@given(
    issued=st.integers(min_value=1, max_value=2**40),
    lifetime=st.integers(min_value=1, max_value=MAX_STATEMENT_LIFETIME),
    name=st.none()
    | st.text(min_size=1, max_size=64).filter(lambda s: s.strip() and s.isprintable()),
    port=st.integers(min_value=1, max_value=65535),
)
def test_any_signed_statement_survives_serving(
    issued: int, lifetime: int, name: str | None, port: int
) -> None:
    statement = Statement(
        StatementKind.ENTRY,
        ALICE.public_key_b64,
        f"https://alice.example:{port}",
        issued,
        issued + lifetime,
        Profile(display_name=name),
    )
    served = orjson.loads(sign_statement(statement, ALICE).document())
    assert check(served, now=issued).statement == statement
