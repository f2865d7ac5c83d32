"""Shared indicators to STIX: valid for OASIS's validator; properties as the level allows."""

from __future__ import annotations

import io

import orjson
import pytest
import stix2

from dtim.model import Tlp
from dtim.model.clock import iso
from dtim.stix.bundle import BundleWriter
from dtim.stix.mapping import indicator_object, indicator_types, shared_objects, sighting_count
from dtim.stix.markings import (
    DTIM_EXTENSION_ID,
    TLP1_IDS,
    TLP2_IDS,
    marking_definitions,
    tlp1_definition,
    tlp_from_refs,
    tlp_of_definition,
)
from tests.stix.conftest import NOW, SAMPLES, sample_indicator, shared_form, validate

STAMP = iso(NOW)


def _bundle(shared: list[dict[str, object]]) -> dict[str, object]:
    out = io.BytesIO()
    writer = BundleWriter(out, stamp=NOW)
    for item in shared:
        writer.write(item)
    writer.close()
    parsed: dict[str, object] = orjson.loads(out.getvalue())
    return parsed


@pytest.mark.parametrize("level", ["strict", "moderate", "open"])
@pytest.mark.parametrize("tlp", list(Tlp))
def test_bundles_validate_at_every_level_and_tlp(level: str, tlp: Tlp) -> None:
    shared = [shared_form(sample_indicator(v, t, tlp=tlp), level) for v, t in SAMPLES]
    bundle = _bundle(shared)
    assert validate(bundle) == []
    # The stix2 library must accept every object too (its own checks are different).
    parsed = stix2.parse(bundle, allow_custom=True)
    assert len(parsed.objects) == len(bundle["objects"])  # type: ignore[arg-type]


def test_strict_level_carries_only_pattern_and_marking() -> None:
    obj = indicator_object(shared_form(sample_indicator("203.0.113.9"), "strict"), stamp=STAMP)
    assert set(obj) == {
        "type", "spec_version", "id", "created", "modified", "name", "pattern", "pattern_type",
        "pattern_version", "valid_from", "object_marking_refs",
    }  # fmt: skip
    assert obj["created"] == obj["modified"] == obj["valid_from"] == STAMP


def test_moderate_adds_confidence_times_and_expiry() -> None:
    indicator = sample_indicator("203.0.113.9")
    obj = indicator_object(shared_form(indicator, "moderate"), stamp=STAMP)
    assert obj["confidence"] == 85
    assert obj["valid_from"] == obj["created"] == iso(indicator.first_seen)
    assert obj["valid_until"] > obj["valid_from"]  # type: ignore[operator]
    assert "labels" not in obj
    assert "indicator_types" not in obj
    assert obj["extensions"] == {
        DTIM_EXTENSION_ID: {
            "extension_type": "property-extension",
            "last_seen": iso(indicator.last_seen),
        }
    }


def test_open_adds_labels_vocabulary_custom_fields_and_a_sighting() -> None:
    indicator = sample_indicator("203.0.113.9")
    objects = shared_objects(shared_form(indicator, "open"), stamp=STAMP)
    obj, sighting = objects
    assert obj["labels"] == ["botnet", "ssh-bruteforce"]
    assert obj["indicator_types"] == ["malicious-activity"]
    assert obj["extensions"][DTIM_EXTENSION_ID]["custom_fields"] == {"asn": 64500}  # type: ignore[index]
    assert sighting["type"] == "sighting"
    assert sighting["count"] == 10
    assert sighting["sighting_of_ref"] == obj["id"]
    assert "where_sighted_refs" not in sighting
    assert "observed_data_refs" not in sighting


def test_ids_are_deterministic_and_nothing_names_an_organisation() -> None:
    indicator = sample_indicator("evil.example")
    first = shared_objects(shared_form(indicator), stamp=STAMP)
    again = shared_objects(shared_form(indicator), stamp=STAMP)
    assert first == again
    assert first[0]["id"] == f"indicator--{indicator.id}"
    bundle = _bundle([shared_form(indicator)])
    for obj in bundle["objects"]:  # type: ignore[attr-defined]
        if obj["type"] in ("indicator", "sighting"):
            assert "created_by_ref" not in obj
        if obj["type"] == "identity":
            assert obj["identity_class"] == "system"


def test_tlp_markings_both_versions_and_definitions_in_bundle() -> None:
    bundle = _bundle([shared_form(sample_indicator("evil.example", tlp=Tlp.AMBER_STRICT))])
    indicator = bundle["objects"][0]  # type: ignore[index]
    assert indicator["object_marking_refs"] == [TLP1_IDS[Tlp.AMBER], TLP2_IDS[Tlp.AMBER_STRICT]]
    defined = {o["id"] for o in bundle["objects"] if o["type"] == "marking-definition"}  # type: ignore[attr-defined]
    assert defined == {TLP1_IDS[Tlp.AMBER], TLP2_IDS[Tlp.AMBER_STRICT]}
    assert tlp_from_refs(indicator["object_marking_refs"]) is Tlp.AMBER_STRICT


def test_tlp1_ids_match_the_stix2_library() -> None:
    for tlp, ref in (
        (Tlp.CLEAR, stix2.TLP_WHITE),
        (Tlp.GREEN, stix2.TLP_GREEN),
        (Tlp.AMBER, stix2.TLP_AMBER),
        (Tlp.RED, stix2.TLP_RED),
    ):
        assert TLP1_IDS[tlp] == ref.id
        assert tlp1_definition(tlp)["name"] == ref.name


def test_tlp_of_foreign_definitions() -> None:
    assert (
        tlp_of_definition(
            {
                "id": "marking-definition--x",
                "definition_type": "tlp",
                "definition": {"tlp": "white"},
            }
        )
        is Tlp.CLEAR
    )
    assert all(tlp_of_definition(d) is not None for d in marking_definitions(Tlp))
    assert (
        tlp_of_definition({"id": "marking-definition--y", "definition_type": "statement"}) is None
    )


def test_vocabulary_and_bucketed_counts() -> None:
    assert indicator_types(["tor", "scanner", "unrelated"]) == [
        "anomalous-activity",
        "anonymization",
    ]
    assert sighting_count("100+") == 100
    assert sighting_count(7) == 7
    assert sighting_count("many") is None
    assert sighting_count(True) is None


def test_expired_indicator_still_has_valid_until_after_valid_from() -> None:
    shared = shared_form(sample_indicator("evil.example"), "moderate")
    shared["valid_until"] = shared["first_seen"]
    obj = indicator_object(shared, stamp=STAMP)
    assert obj["valid_until"] > obj["valid_from"]  # type: ignore[operator]
