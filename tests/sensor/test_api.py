from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from dtim.crypto.evidence import open_evidence
from dtim.model import Evidence, Sighting, make_indicator
from dtim.model.clock import iso
from dtim.sensor.admin import add_sensor, list_sensors, revoke_sensor
from dtim.sensor.wire import sighting_json
from tests.sensor.conftest import Node, node_app
from tests.servers import running_server

PATH = "/api/v1/sensors/sightings"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _body(batch_id: str, *values: str, created: datetime | None = None) -> bytes:
    sightings = [
        sighting_json(
            Sighting(
                make_indicator(value, now=NOW, sources=["ufw"]),
                "ufw",
                "ufw-port-scan",
                NOW,
                count=12,
                evidence=Evidence(lines=(f"SRC={value}",), hosts=("gw-1",)),
            )
        )
        for value in values
    ]
    batch: dict[str, object] = {"batch_id": batch_id, "sightings": sightings}
    if created is not None:
        batch["created"] = iso(created)
    return orjson.dumps({"batches": [batch]})


def _post(client: httpx.Client, url: str, body: bytes, token: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return client.post(url, content=body, headers=headers)


async def test_batches_commit_once_with_sealed_evidence_naming_the_sensor(node: Node) -> None:
    with (
        running_server(node.app, ssl_context=node.server_tls, mtls=False) as server,
        httpx.Client(verify=node.client_tls, timeout=10) as client,
    ):
        body = _body("a" * 32, "45.13.7.9", "45.13.7.10")
        first = _post(client, server.url(PATH), body, node.token)
        again = _post(client, server.url(PATH), body, node.token)
    assert first.status_code == 200, first.text
    assert first.json() == {"sensor": "dmz-1", "accepted": 1, "duplicates": 0, "sightings": 2}
    assert again.json() == {"sensor": "dmz-1", "accepted": 0, "duplicates": 1, "sightings": 0}
    stored = await node.store.find_indicator("ipv4", "45.13.7.9")
    assert stored is not None
    assert stored.sightings == 1
    [sighting] = await node.store.sightings_for(stored.id)
    assert sighting.sealed_evidence is not None
    evidence = open_evidence(node.keyring, sighting.sealed_evidence, context=stored.id)
    assert evidence.lines == ("SRC=45.13.7.9",)
    assert evidence.details["sensor"] == "dmz-1"
    [listed] = await list_sensors(node.store)
    assert listed["last_used"] is not None
    assert "token" not in listed


async def test_tokens_are_checked_and_revocation_applies_at_once(node: Node) -> None:
    other = await add_sensor(node.store, "dmz-2", NOW)
    with (
        running_server(node.app, ssl_context=node.server_tls, mtls=False) as server,
        httpx.Client(verify=node.client_tls, timeout=10) as client,
    ):
        url = server.url(PATH)
        body = _body("b" * 32, "45.13.7.11")
        missing = _post(client, url, body, None)
        forged = _post(client, url, body, str(other["token"])[:-4] + "AAAA")
        garbage = _post(client, url, body, "not-a-token")
        assert _post(client, url, body, str(other["token"])).status_code == 200
        await revoke_sensor(node.store, "dmz-2", NOW)
        revoked = _post(client, url, _body("c" * 32, "45.13.7.12"), str(other["token"]))
    assert [r.status_code for r in (missing, forged, garbage, revoked)] == [401, 401, 401, 403]
    assert revoked.json()["error"] == "refused"
    assert "revoked" in revoked.json()["reason"]
    assert await node.store.find_indicator("ipv4", "45.13.7.12") is None


def _post_streamed(client: httpx.Client, url: str, token: str) -> httpx.Response:
    """A body without Content-Length that grows past the limit while it is read."""

    def chunks() -> Iterator[bytes]:
        yield b'{"batches": ['
        yield b" " * 4000

    return client.post(url, content=chunks(), headers={"authorization": f"Bearer {token}"})


async def test_bad_and_oversized_bodies_are_refused_with_json(node: Node) -> None:
    small = node_app(node.store, node.keyring, max_body_bytes=2000)
    with (
        running_server(small, ssl_context=node.server_tls, mtls=False) as server,
        httpx.Client(verify=node.client_tls, timeout=10) as client,
    ):
        url = server.url(PATH)
        big = _post(
            client, url, _body("d" * 32, *[f"45.13.8.{n}" for n in range(1, 40)]), node.token
        )

        streamed = _post_streamed(client, url, node.token)
        not_json = _post(client, url, b"{nope", node.token)
        bad_field = _post(
            client,
            url,
            orjson.dumps({"batches": [{"batch_id": "e" * 32, "sightings": [{}]}]}),
            node.token,
        )
    assert (big.status_code, streamed.status_code) == (413, 413)
    assert not_json.status_code == 400
    assert "not JSON" in not_json.json()["reason"]
    assert bad_field.status_code == 400
    assert bad_field.json()["field"] == "batches[0].sightings[0].indicator"
    assert (await node.store.counts()).total == 0


async def test_a_batch_buffered_longer_than_the_node_remembers_is_refused(node: Node) -> None:
    now = datetime.now(UTC)
    with (
        running_server(node.app, ssl_context=node.server_tls, mtls=False) as server,
        httpx.Client(verify=node.client_tls, timeout=10) as client,
    ):
        stale = _post(
            client,
            server.url(PATH),
            _body("f" * 32, "45.13.9.1", created=now - timedelta(days=29, hours=1)),
            node.token,
        )
        kept = _post(
            client,
            server.url(PATH),
            _body("0" * 32, "45.13.9.2", created=now - timedelta(days=28)),
            node.token,
        )
    assert stale.status_code == 400
    assert stale.json()["field"] == "batches[0].created"
    assert "29 days" in stale.json()["reason"]
    assert kept.status_code == 200, kept.text
    assert kept.json()["accepted"] == 1
    assert await node.store.find_indicator("ipv4", "45.13.9.1") is None
