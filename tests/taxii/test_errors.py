"""Bad requests get the spec's error message and status, and nothing is stored half-way."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from dtim.taxii.backend import MemoryFeed
from dtim.taxii.collections import find_collection
from dtim.taxii.server import TaxiiServer
from tests.taxii.conftest import PASSWORD, sample_indicators

TAXII = "application/taxii+json;version=2.1"


def _auth(user: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Accept": TAXII}


@pytest.fixture
async def client(server: TaxiiServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=server.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://taxii.test") as http:
        yield http


def _objects(alias: str) -> str:
    found = find_collection(alias)
    assert found is not None
    return f"/api/collections/{found.id}/objects/"


def _assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == TAXII
    body = response.json()
    assert body["http_status"] == str(status)
    assert body["title"]
    assert body["description"]


def _indicator(
    value: str, ident: str = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
) -> dict[str, object]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": ident,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": f"[domain-name:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00.000Z",
    }


async def _post(
    client: httpx.AsyncClient, body: bytes, content_type: str = TAXII
) -> httpx.Response:
    headers = {**_auth("writer"), "Content-Type": content_type}
    return await client.post(_objects("inbox"), content=body, headers=headers)


async def test_malformed_json_is_400_and_stores_nothing(
    client: httpx.AsyncClient, feed: MemoryFeed
) -> None:
    _assert_problem(await _post(client, b'{"objects": [ {"type": '), 400)
    assert len(feed) == 0


async def test_not_an_envelope_is_422(client: httpx.AsyncClient, feed: MemoryFeed) -> None:
    good = _indicator("fine.example")
    body = orjson.dumps({"objects": [good, {"no": "type"}]})
    _assert_problem(await _post(client, body), 422)
    _assert_problem(await _post(client, orjson.dumps({"objects": "nope"})), 422)
    _assert_problem(await _post(client, orjson.dumps(["x"])), 422)
    _assert_problem(await _post(client, orjson.dumps({"more": False, "other": []})), 422)
    assert len(feed) == 0


async def test_wrong_content_type_is_415(client: httpx.AsyncClient, feed: MemoryFeed) -> None:
    body = orjson.dumps({"objects": [_indicator("fine.example")]})
    _assert_problem(await _post(client, body, "application/json"), 415)
    _assert_problem(await _post(client, body, "application/taxii+json;version=2.0"), 415)
    assert len(feed) == 0


async def test_oversize_envelope_is_413(client: httpx.AsyncClient, feed: MemoryFeed) -> None:
    many = [
        _indicator(f"d{i}.example", f"indicator--8e2e2d2b-17d4-4cbf-938f-{i:012d}")
        for i in range(400)
    ]
    _assert_problem(await _post(client, orjson.dumps({"objects": many})), 413)

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit is enforced while reading.
        for _ in range(100):
            yield b" " * 1024

    headers = {**_auth("writer"), "Content-Type": TAXII}
    _assert_problem(await client.post(_objects("inbox"), content=chunks(), headers=headers), 413)
    assert len(feed) == 0


async def test_wrong_accept_is_406(client: httpx.AsyncClient) -> None:
    headers = {**_auth("reader"), "Accept": "application/json"}
    _assert_problem(await client.get("/api/collections/", headers=headers), 406)
    headers["Accept"] = "application/taxii+json;version=2.0"
    _assert_problem(await client.get("/api/collections/", headers=headers), 406)
    headers["Accept"] = "*/*"
    assert (await client.get("/api/collections/", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-5",
        "limit=abc",
        "added_after=yesterday",
        "next=zzz",
        "match[version]=sometime",
        "next=1",
        "next=8000000000000000.0",  # past a 64-bit change number: refused, not sent to the store
        "limit=%C2%B2",  # "²" passes str.isdigit() but not int()
    ],
)
async def test_bad_paging_and_filters_are_400(client: httpx.AsyncClient, query: str) -> None:
    _assert_problem(
        await client.get(f"{_objects('tlp-green')}?{query}", headers=_auth("reader")), 400
    )


async def test_unknown_or_hidden_things_are_404_and_forbidden_403(
    client: httpx.AsyncClient,
) -> None:
    _assert_problem(
        await client.get("/api/collections/nope/objects/", headers=_auth("reader")), 404
    )
    # tlp-amber exists, but reader was not granted AMBER: it looks unknown.
    _assert_problem(await client.get(_objects("tlp-amber"), headers=_auth("reader")), 404)
    _assert_problem(await client.get(_objects("inbox"), headers=_auth("writer")), 403)
    _assert_problem(await _post_as(client, "reader"), 404)
    _assert_problem(
        await client.get(
            f"{_objects('tlp-green')}indicator--0e2a4b8e-0000-4000-8000-000000000000/",
            headers=_auth("reader"),
        ),
        404,
    )
    _assert_problem(
        await client.get(
            "/api/status/5d0092c5-5f74-4287-9642-33f4c354e56d/", headers=_auth("reader")
        ),
        404,
    )


async def _post_as(client: httpx.AsyncClient, user: str) -> httpx.Response:
    headers = {**_auth(user), "Content-Type": TAXII}
    return await client.post(_objects("inbox"), content=b'{"objects": []}', headers=headers)


async def test_no_credentials_is_401_with_a_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/collections/", headers={"Accept": TAXII})
    _assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_warninglisted_and_unsupported_objects_fail_without_blocking_the_rest(
    client: httpx.AsyncClient, feed: MemoryFeed
) -> None:
    objects = [
        _indicator("bad-actor-c2.net"),
        {
            **_indicator("x", "indicator--0e2a4b8e-0000-4000-8000-000000000001"),
            "pattern": "[ipv4-addr:value = '10.1.2.3']",
        },
        {
            **_indicator("y", "indicator--0e2a4b8e-0000-4000-8000-000000000002"),
            "pattern": "[url:value LIKE 'x%']",
        },
    ]
    response = await _post(client, orjson.dumps({"objects": objects}))
    assert response.status_code == 202
    status = response.json()
    assert status["success_count"] == 1
    assert status["failure_count"] == 2
    assert len(feed) == 1


async def test_pages_follow_next_to_the_end_with_date_headers(
    client: httpx.AsyncClient, feed: MemoryFeed
) -> None:
    feed.add(sample_indicators(120))
    ids: list[str] = []
    url = f"{_objects('tlp-green')}?limit=50&match[type]=indicator"
    while True:
        response = await client.get(url, headers=_auth("reader"))
        assert response.status_code == 200
        body = response.json()
        ids.extend(o["id"] for o in body["objects"])
        assert (
            response.headers["X-TAXII-Date-Added-First"]
            <= response.headers["X-TAXII-Date-Added-Last"]
        )
        if not body["more"]:
            break
        url = f"{_objects('tlp-green')}?limit=50&match[type]=indicator&next={body['next']}"
    assert len(ids) == len(set(ids)) == 120
    later = await client.get(
        f"{_objects('tlp-green')}?added_after=2026-01-01T00:00:00Z", headers=_auth("reader")
    )
    assert later.status_code == 200
    assert later.json() == {}


async def test_a_huge_limit_means_the_largest_page(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"{_objects('tlp-green')}?limit={'9' * 5000}", headers=_auth("reader")
    )
    assert response.status_code == 200


async def test_unrouted_paths_and_methods_get_taxii_error_messages(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/api/status/a%0Ab/", headers=_auth("reader"))
    _assert_problem(missing, 404)
    missing = await client.get("/api/nowhere/", headers=_auth("reader"))
    _assert_problem(missing, 404)
    wrong = await client.delete(_objects("tlp-green"), headers=_auth("reader"))
    _assert_problem(wrong, 405)
    assert set(wrong.headers["allow"].split(", ")) >= {"GET", "POST"}
