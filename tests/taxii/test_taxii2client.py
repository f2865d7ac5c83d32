"""OASIS's own taxii2-client against our server on a real uvicorn (discovery to POST + status)."""

from __future__ import annotations

import asyncio

import pytest
import requests
from stix2patterns.validator import run_validator
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from dtim.model import Tlp
from dtim.stix.patterns import build_pattern
from dtim.taxii.collections import find_collection
from tests.stix.conftest import validate
from tests.taxii.conftest import PASSWORD, Running, sample_indicators


def _collection(running: Running, alias: str, user: str = "reader") -> Collection:
    found = find_collection(alias)
    assert found is not None
    return Collection(f"{running.url}api/collections/{found.id}/", user=user, password=PASSWORD)


async def test_discovery_collections_pages_manifest_versions(running: Running) -> None:
    running.server.feed.add(sample_indicators(250))  # type: ignore[attr-defined]
    running.server.feed.add(sample_indicators(5, tlp=Tlp.CLEAR, start=1000))  # type: ignore[attr-defined]

    def scenario() -> None:
        server = Server(running.url, user="reader", password=PASSWORD)
        assert server.title == "DTIM TAXII server"
        root = server.default
        assert isinstance(root, ApiRoot)
        assert root.versions == ["application/taxii+json;version=2.1"]
        titles = {c.title for c in root.collections}
        assert titles == {"Public indicators", "TLP:GREEN indicators"}
        green = next(c for c in root.collections if c.title == "TLP:GREEN indicators")
        assert green.can_read
        assert not green.can_write

        seen: list[dict[str, object]] = []
        for page in as_pages(green.get_objects, per_request=100, type="indicator"):
            seen.extend(page.get("objects", []))
        assert len(seen) == 250
        assert len({o["id"] for o in seen}) == 250
        assert all(o["type"] == "indicator" for o in seen)

        first = seen[0]
        one = green.get_object(first["id"])
        assert one["objects"] == [first]
        versions = green.object_versions(first["id"])
        assert versions["versions"] == [first["modified"]]

        manifest = green.get_manifest(limit=10)
        assert len(manifest["objects"]) == 10
        assert manifest["more"] is True
        assert {m["media_type"] for m in manifest["objects"]} == {
            "application/stix+json;version=2.1"
        }

        filtered = green.get_objects(id=first["id"])
        assert [o["id"] for o in filtered["objects"]] == [first["id"]]
        markings = green.get_objects(type="marking-definition")
        assert {o["name"] for o in markings["objects"]} == {"TLP:GREEN"}

        # Everything served is valid STIX 2.1, and every pattern valid STIX patterning.
        everything = green.get_objects(limit=1000)["objects"]
        assert {o["type"] for o in everything} == {
            "indicator",
            "marking-definition",
            "identity",
            "extension-definition",
        }
        bundle = {
            "type": "bundle",
            "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
            "objects": everything,
        }
        assert validate(bundle) == []
        for obj in everything:
            if obj["type"] == "indicator":
                assert run_validator(obj["pattern"], stix_version="2.1") == []

    await asyncio.to_thread(scenario)


async def test_post_envelope_then_status(running: Running) -> None:
    indicator = sample_indicators(1, start=7)[0]
    envelope = {
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                "created": "2026-01-01T00:00:00.000Z",
                "modified": "2026-01-01T00:00:00.000Z",
                "pattern": build_pattern("ipv4", indicator.value),
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00.000Z",
                "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
            },
            {
                "type": "malware",
                "spec_version": "2.1",
                "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
                "created": "2026-01-01T00:00:00.000Z",
                "modified": "2026-01-01T00:00:00.000Z",
                "name": "x",
                "is_family": False,
            },
        ]
    }

    def scenario() -> None:
        root = Server(running.url, user="writer", password=PASSWORD).default
        inbox = next(c for c in root.collections if c.title == "Inbox")
        assert inbox.can_write
        assert not inbox.can_read
        status = inbox.add_objects(envelope, wait_for_completion=False)
        assert status.status == "complete"
        assert status.success_count == 1
        assert status.failure_count == 1
        assert "indicators" in status.failures[0]["message"]
        again = root.get_status(status.id)
        assert again.total_count == 2

    await asyncio.to_thread(scenario)
    stored = await running.server.feed.get(indicator.id)
    assert stored is not None
    assert stored.indicator.tlp is Tlp.GREEN
    assert stored.indicator.sources == ("taxii-inbox:writer",)


async def test_wrong_password_and_unknown_collection(running: Running) -> None:
    def scenario() -> None:
        with pytest.raises(requests.HTTPError) as denied:
            Server(running.url, user="reader", password="wrong password!").refresh()
        assert denied.value.response is not None
        assert denied.value.response.status_code == 401
        with pytest.raises(requests.HTTPError) as missing:
            Collection(
                f"{running.url}api/collections/nope/", user="reader", password=PASSWORD
            ).refresh()
        assert missing.value.response is not None
        assert missing.value.response.status_code == 404
        assert missing.value.response.json()["http_status"] == "404"

    await asyncio.to_thread(scenario)
