"""TLP marking definitions and the DTIM extension definition (STIX 2.1 §7.2, §7.3).

Two sets of official TLP marking definitions exist and DTIM writes both:

* TLP 1.0, predefined by STIX 2.1 §7.2.1.4 (``TLP:WHITE`` ... ``TLP:RED``);
* TLP 2.0, published by the OASIS CTI TC in ``cti-stix-common-objects``
  (``extension-definitions-specifications/tlp-2.0``) as marking definitions
  carrying the property extension ``extension-definition--60a3c5c5-...``.

TLP 1.0 has no AMBER+STRICT; such objects get the TLP 1.0 AMBER marking next to
TLP 2.0 AMBER+STRICT, and an importer reading both keeps the stricter one.

Nothing here names the organisation running the node: the one identity DTIM
writes (as the required ``created_by_ref`` of its own extension definition)
names the software.
"""

from __future__ import annotations

from collections.abc import Iterable

from dtim.errors import ValidationError
from dtim.model import Tlp

StixObject = dict[str, object]
"""A STIX object or TAXII resource as plain JSON data."""

TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
"""The OASIS TLP 2.0 property extension every TLP 2.0 marking definition carries."""

TLP2_CREATED = "2022-10-01T00:00:00.000Z"
TLP1_CREATED = "2017-01-20T00:00:00.000Z"

TLP1_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    Tlp.GREEN: "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    Tlp.AMBER: "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    Tlp.AMBER_STRICT: "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    Tlp.RED: "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
TLP2_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
_TLP1_NAMES = {Tlp.CLEAR: "white", Tlp.GREEN: "green", Tlp.AMBER: "amber", Tlp.RED: "red"}

DTIM_IDENTITY_ID = "identity--27a69447-a0cf-54c9-81d9-b112a26097dc"
"""The software identity behind DTIM's extension definition (not the operator's)."""

DTIM_EXTENSION_ID = "extension-definition--29f0b5f0-de09-510d-9f7c-931aa0f84da7"
"""DTIM's property extension on indicators: recipients and custom fields."""

DTIM_DEFINITIONS_CREATED = "2026-01-01T00:00:00.000Z"

MARKING_TLP: dict[str, Tlp] = {
    **{ident: tlp for tlp, ident in TLP1_IDS.items() if tlp is not Tlp.AMBER_STRICT},
    **{ident: tlp for tlp, ident in TLP2_IDS.items()},
}
"""Marking-definition id -> the TLP it stands for (both TLP versions)."""


def tlp_marking_refs(tlp: Tlp) -> list[str]:
    """The ``object_marking_refs`` for ``tlp``: the TLP 1.0 id, then the TLP 2.0 id."""
    return list(_REFS[tlp])


_REFS: dict[Tlp, tuple[str, str]] = {tlp: (TLP1_IDS[tlp], TLP2_IDS[tlp]) for tlp in Tlp}


def tlp_from_refs(refs: Iterable[object], definitions: dict[str, Tlp] | None = None) -> Tlp | None:
    """The strictest TLP among marking refs, or None when none of them is a TLP marking.

    Args:
        refs: ``object_marking_refs`` of an object.
        definitions: TLP markings defined in the same bundle under other ids
            (``marking-definition`` objects of ``definition_type`` ``tlp`` or
            carrying the TLP 2.0 extension), from :func:`tlp_of_definition`.
    """
    found: Tlp | None = None
    for ref in refs:
        if not isinstance(ref, str):
            continue
        tlp = MARKING_TLP.get(ref) or (definitions or {}).get(ref)
        if tlp is not None:
            found = tlp if found is None else found.stricter(tlp)
    return found


def tlp_of_definition(obj: StixObject) -> Tlp | None:
    """The TLP a ``marking-definition`` object expresses, or None when it is not a TLP marking."""
    known = MARKING_TLP.get(str(obj.get("id")))
    if known is not None:
        return known
    extensions = obj.get("extensions")
    if isinstance(extensions, dict):
        tlp2 = extensions.get(TLP2_EXTENSION_ID)
        if isinstance(tlp2, dict) and isinstance(tlp2.get("tlp_2_0"), str):
            return _parse_tlp(str(tlp2["tlp_2_0"]))
    definition = obj.get("definition")
    if obj.get("definition_type") == "tlp" and isinstance(definition, dict):
        return _parse_tlp(str(definition.get("tlp", "")))
    return None


def _parse_tlp(raw: str) -> Tlp | None:
    try:
        return Tlp.parse(raw)
    except ValidationError:
        return None


def tlp1_definition(tlp: Tlp) -> StixObject:
    """The predefined TLP 1.0 marking definition used for ``tlp`` (STIX 2.1 §7.2.1.4)."""
    name = _TLP1_NAMES[Tlp.AMBER if tlp is Tlp.AMBER_STRICT else tlp]
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP1_IDS[tlp],
        "created": TLP1_CREATED,
        "definition_type": "tlp",
        "name": f"TLP:{name.upper()}",
        "definition": {"tlp": name},
    }


def tlp2_definition(tlp: Tlp) -> StixObject:
    """The OASIS TLP 2.0 marking definition for ``tlp``."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_IDS[tlp],
        "created": TLP2_CREATED,
        "name": f"TLP:{tlp.value.upper()}",
        "extensions": {
            TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": tlp.value},
        },
    }


def marking_definitions(tlps: Iterable[Tlp]) -> list[StixObject]:
    """Every marking-definition object the given TLPs refer to, without duplicates."""
    seen: set[str] = set()
    out: list[StixObject] = []
    for tlp in sorted(set(tlps), key=lambda t: t.rank):
        for obj in (tlp1_definition(tlp), tlp2_definition(tlp)):
            if obj["id"] not in seen:
                seen.add(str(obj["id"]))
                out.append(obj)
    return out


def dtim_identity() -> StixObject:
    """The identity of the DTIM software, creator of its extension definition."""
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": DTIM_IDENTITY_ID,
        "created": DTIM_DEFINITIONS_CREATED,
        "modified": DTIM_DEFINITIONS_CREATED,
        "name": "DTIM (Decentralized Threat Intelligence Mesh) software",
        "identity_class": "system",
    }


def dtim_extension_definition() -> StixObject:
    """DTIM's property extension for indicators (STIX 2.1 §7.3)."""
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": DTIM_EXTENSION_ID,
        "created_by_ref": DTIM_IDENTITY_ID,
        "created": DTIM_DEFINITIONS_CREATED,
        "modified": DTIM_DEFINITIONS_CREATED,
        "name": "DTIM indicator properties",
        "description": (
            "Properties DTIM shares with an indicator beyond core STIX: recipients (peer ids or "
            "group names an AMBER/RED indicator may reach) and operator-defined custom fields."
        ),
        "schema": (
            "recipients: list of strings; custom_fields: object of operator-defined keys with "
            "JSON values; sightings: integer, a bucketed count of reports"
        ),
        "version": "1.0.0",
        "extension_types": ["property-extension"],
    }


def definition_objects(tlps: Iterable[Tlp], *, with_extension: bool) -> list[StixObject]:
    """The objects a bundle carries so that every reference in it resolves."""
    objects = marking_definitions(tlps)
    if with_extension:
        objects.extend([dtim_identity(), dtim_extension_definition()])
    return objects
