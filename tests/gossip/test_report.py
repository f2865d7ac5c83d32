"""Reports and tombstones: invariants, canonical encoding and ids."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import orjson
import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from dtim.aging import Verdict
from dtim.errors import ValidationError
from dtim.gossip.protocol import decode_item
from dtim.gossip.report import canonical, encode, item_id, item_key, verify_tombstone
from dtim.model.tlp import Tlp
from tests.gossip.reports import BUCKET, NODE_A, NODE_B, make_report, make_tombstone

texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)


@given(value=texts, tags=st.lists(texts, max_size=5, unique=True), tlp=st.sampled_from(list(Tlp)))
def test_canonical_form_is_rfc8785(value: str, tags: list[str], tlp: Tlp) -> None:
    recipients = ("peer-1", "team") if tlp.needs_recipients else ()
    report = make_report(
        value, "custom-x", tags=tuple(sorted(tags)), tlp=tlp, recipients=recipients
    )
    assert encode(report) == rfc8785.dumps(report.to_json())
    tombstone = make_tombstone(value, "custom-x", tlp=tlp, recipients=recipients)
    assert encode(tombstone) == rfc8785.dumps(tombstone.to_json())


def test_item_id_is_sha256_of_canonical_bytes() -> None:
    report = make_report()
    assert item_id(report) == hashlib.sha256(canonical(report.to_json())).digest()
    assert item_key(report) == (BUCKET, item_id(report))
    assert item_id(make_report(confidence=81)) != item_id(report)
    assert "signature" not in report.to_json()
    assert "origin" not in str(report.to_json())


def test_tombstone_signs_everything_but_the_signature() -> None:
    tombstone = make_tombstone()
    assert b"signature" not in tombstone.signed_payload()
    assert tombstone.to_json()["signature"] == tombstone.signature
    assert tombstone.timestamp == BUCKET


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"value": ""}, "value"),
        ({"value": "x" * 4097}, "value"),
        ({"indicator": "00000000-0000-0000-0000-000000000000"}, "indicator"),
        ({"tlp": Tlp.AMBER}, "recipients"),
        ({"recipients": ("peer-1",)}, "recipients"),
        ({"tlp": Tlp.RED, "recipients": ("b", "a")}, "recipients"),
        ({"tlp": Tlp.RED, "recipients": ("",)}, "recipients"),
        ({"tlp": Tlp.RED, "recipients": tuple(f"p{i:03}" for i in range(65))}, "recipients"),
        ({"bucket": -1}, "bucket"),
        ({"bucket": True}, "bucket"),
        ({"expires": 2**63}, "expires"),
        ({"expires": BUCKET}, "expires"),
        ({"confidence": 101}, "confidence"),
        ({"tags": ("b", "a")}, "tags"),
        ({"reporter": "ABC"}, "reporter"),
    ],
)
def test_report_invariants(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_report(**overrides)  # type: ignore[arg-type]  # deliberately wrong values
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"verdict": Verdict.CONFIRMED}, "verdict"),
        ({"expires": 1}, "expires"),
        ({"issuer": ""}, "issuer"),
        ({"issuer": "node-a"}, "issuer"),
        ({"issuer_key": ""}, "issuer_key"),
        ({"issuer_key": "not base64!"}, "issuer_key"),
        ({"issuer_key": base64.b64encode(b"k" * 31).decode()}, "issuer_key"),
        (
            {"issuer_key": base64.b64encode(NODE_A.public_key_raw).decode().rstrip("=")},
            "issuer_key",
        ),
        ({"signature": "x" * 513}, "signature"),
        ({"tlp": Tlp.AMBER}, "recipients"),
    ],
)
def test_tombstone_invariants(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_tombstone(**overrides)  # type: ignore[arg-type]  # deliberately wrong values
    assert caught.value.field == field


def test_a_tombstone_carries_its_issuers_key_signed_and_hashed() -> None:
    tombstone = make_tombstone()
    assert tombstone.issuer == NODE_A.node_id
    assert tombstone.issuer_key == NODE_A.public_key_b64
    assert tombstone.to_json()["issuer_key"] == NODE_A.public_key_b64
    assert b'"issuer_key":' in tombstone.signed_payload()
    assert decode_item(orjson.loads(encode(tombstone))) == tombstone
    # Another issuer's tombstone on the same indicator is another item.
    assert item_id(make_tombstone(signer=NODE_B)) != item_id(tombstone)
    assert verify_tombstone(tombstone)
    assert verify_tombstone(make_tombstone(signer=NODE_B))


def test_a_tombstone_whose_key_does_not_name_its_issuer_does_not_verify() -> None:
    # Signed by A with A's key, but claiming to be B's: a relay cannot pin it on B.
    claimed = make_tombstone(issuer=NODE_B.node_id)
    assert not verify_tombstone(claimed)
    # B's key and id, signed by A: the key does not check the signature.
    stolen = replace(make_tombstone(signer=NODE_B), signature=make_tombstone().signature)
    assert not verify_tombstone(stolen)
    # Any change after signing breaks it; a signature that is not base64 is refused.
    assert not verify_tombstone(replace(make_tombstone(), expires=BUCKET + 30 * 86400))
    assert not verify_tombstone(make_tombstone(signature="not base64!"))
