"""Limits and errors of the registry API, in process (httpx.ASGITransport)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest

from dtim.crypto.identity import NodeIdentity
from dtim.registry.client import RegistryClient, RegistryRefusal, registry_tls_context
from dtim.registry.limits import Rate, TokenBuckets
from dtim.registry.records import RegistryRecords
from dtim.registry.routes import RegistryOptions, create_registry_app

REGISTRY = NodeIdentity.generate()


@asynccontextmanager
async def app_client(
    options: RegistryOptions | None = None, address: str = "198.51.100.7"
) -> AsyncIterator[tuple[httpx.AsyncClient, Callable[[], RegistryClient]]]:
    """A raw client and a RegistryClient factory, both talking to the app in process."""
    with tempfile.TemporaryDirectory() as directory:
        async with RegistryRecords(f"sqlite:///{directory}/registry.db") as records:
            app = create_registry_app(records, REGISTRY, options)
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            clients: list[RegistryClient] = []

            def registry_client() -> RegistryClient:
                verify = registry_tls_context()
                clients.append(
                    RegistryClient("http://registry", verify=verify, transport=transport)
                )
                return clients[-1]

            async with httpx.AsyncClient(transport=transport, base_url="http://registry") as raw:
                yield raw, registry_client
            for client in clients:
                await client.close()


async def test_errors_are_json_with_a_reason() -> None:
    async with app_client() as (http, _):
        cases = {
            "/api/v1/nodes/register": (
                await http.post(
                    "/api/v1/nodes/register",
                    content=b"{",
                    headers={"content-type": "application/json"},
                )
            ),
            "missing": await http.post("/api/v1/nodes/register", json={"endpoint": "https://x"}),
            "no such path": await http.get("/api/v1/nothing"),
            "wrong method": await http.put("/api/v1/peers"),
            "bad limit": await http.get("/api/v1/peers", params={"limit": 5000}),
            "bad since": await http.get("/api/v1/peers", params={"since": "yesterday"}),
            "since past 64 bits": await http.get("/api/v1/entries", params={"since": 2**64}),
        }
    statuses = {name: r.status_code for name, r in cases.items()}
    assert statuses == {
        "/api/v1/nodes/register": 400,
        "missing": 400,
        "no such path": 404,
        "wrong method": 405,
        "bad limit": 400,
        "bad since": 400,
        "since past 64 bits": 400,
    }
    for response in cases.values():
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert set(body) == {"error", "reason"}
        assert body["reason"]
    assert cases["missing"].json()["reason"] == "public_key: Field required"
    assert cases["/api/v1/nodes/register"].json()["reason"] == "body: not valid JSON"


async def test_bodies_over_the_limit_get_413_unread() -> None:
    async with app_client(RegistryOptions(max_body_bytes=1024)) as (http, _):
        declared = await http.post("/api/v1/nodes/register", content=b"x" * 2048)

        async def stream() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"y" * 512

        chunked = await http.post("/api/v1/nodes/register", content=stream())
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json() == {"error": "body too large", "reason": "the limit is 1024 bytes"}


async def test_each_client_address_is_rate_limited() -> None:
    options = RegistryOptions(address_rate=Rate(0.5, 3))
    async with app_client(options) as (http, _):
        answers = [await http.get("/api/v1/peers") for _ in range(4)]
        health = await http.get("/healthz")
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"] == "rate limited"
    assert answers[-1].headers["retry-after"] == "2"
    assert health.status_code == 200
    async with app_client(options, address="203.0.113.50") as (http, _):
        assert (await http.get("/api/v1/peers")).status_code == 200


async def test_each_key_is_rate_limited() -> None:
    options = RegistryOptions(key_rate=Rate(0.01, 2))
    alice, bob = NodeIdentity.generate(), NodeIdentity.generate()
    async with app_client(options) as (_, make):
        client = make()
        await client.register(alice, "https://alice.example:3030")
        await client.register(alice, "https://alice.example:3030")
        with pytest.raises(RegistryRefusal) as limited:
            await client.register(alice, "https://alice.example:3030")
        await client.register(bob, "https://bob.example:3030")
    assert limited.value.status == 429
    assert "this key" in limited.value.reason


async def test_openapi_describes_the_api() -> None:
    async with app_client() as (http, _):
        document = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
    assert docs.status_code == 200
    paths = document["paths"]
    assert set(paths) >= {
        "/api/v1/registry",
        "/api/v1/nodes/register",
        "/api/v1/nodes/{node_id}",
        "/api/v1/peers",
        "/api/v1/entries",
    }
    register = paths["/api/v1/nodes/register"]["post"]
    assert {"400", "401", "409", "413", "422", "429"} <= set(register["responses"])
    schemas = document["components"]["schemas"]
    assert {"public_key", "endpoint", "statement", "signature"} <= set(
        schemas["RegistrationRequest"]["properties"]
    )
    assert "since" in {p["name"] for p in paths["/api/v1/peers"]["get"]["parameters"]}


async def test_verification_can_be_disabled_for_benchmarks_only() -> None:
    assert RegistryOptions().verify_signatures is True
    identity = NodeIdentity.generate()
    async with app_client(RegistryOptions(verify_signatures=False)) as (http, make):
        async with make() as client:
            await client.register(identity, "https://n.example:3030")
        listed = orjson.loads((await http.get("/api/v1/peers")).content)
    assert [i["node_id"] for i in listed] == [identity.node_id]


async def test_list_pages_are_gzipped_for_clients_that_accept_it() -> None:
    async with app_client() as (http, make):
        async with make() as client:
            for i in range(6):
                await client.register(NodeIdentity.generate(), f"https://n{i}.example:3030")
        # (limit=50: a page the registrations' answers did not already put in the cache)
        squeezed = await http.get("/api/v1/peers?limit=50", headers={"accept-encoding": "gzip"})
        plain = await http.get("/api/v1/peers?limit=50", headers={"accept-encoding": "identity"})
    assert squeezed.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert squeezed.json() == plain.json()
    assert len(plain.json()) == 6


def test_token_buckets_refill_and_stay_bounded() -> None:
    buckets = TokenBuckets(Rate(1.0, 2), max_buckets=10)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert buckets.take("a", 1.0) == 0.0
    for i in range(50):
        buckets.take(f"client-{i}", 100.0 + i)
    assert len(buckets) <= 10
    with pytest.raises(ValueError, match="rate"):
        Rate(0, 1)
