"""The registry service over real TLS: seed API shapes, proof of key possession, replay, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from dtim.crypto.identity import NodeIdentity
from dtim.crypto.signatures import MessageSigner
from dtim.errors import RegistryError
from dtim.model.clock import FakeClock
from dtim.registry.client import RegistryClient, RegistryRefusal, registry_tls_context
from dtim.registry.statements import Profile, Statement, StatementKind, sign_statement
from tests.registry.conftest import Home, LiveRegistry, closed_port, serve_registry

REGISTER = "/api/v1/nodes/register"


def registration_body(
    identity: NodeIdentity, endpoint: str, issued: int, lifetime: int = 900
) -> bytes:
    statement = Statement(
        StatementKind.ENTRY, identity.public_key_b64, endpoint, issued, issued + lifetime
    )
    signed = sign_statement(statement, identity)
    return orjson.dumps(
        {
            "public_key": identity.public_key_b64,
            "endpoint": endpoint,
            "statement": dict(signed.raw),
            "signature": signed.signature,
        }
    )


def signed_headers(
    signer: NodeIdentity, registry: LiveRegistry, body: bytes, *, clock: FakeClock | None = None
) -> dict[str, str]:
    signed = MessageSigner(signer, clock=clock).sign_request(
        method="POST",
        path=REGISTER,
        query=None,
        body=body,
        recipient=registry.home.identity.node_id,
    )
    return {"content-type": "application/json", **dict(signed.headers)}


def now() -> int:
    return int(datetime.now(UTC).timestamp())


async def post(registry: LiveRegistry, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with registry.client() as client:
        return await client._http.post(REGISTER, content=body, headers=headers)


async def test_register_and_list_keep_the_seed_shapes(
    registry: LiveRegistry, homes: dict[str, Home]
) -> None:
    alice, bob = homes["alice"], homes["bob"]
    async with registry.client() as client:
        await client.register(alice.identity, alice.endpoint)
        body = registration_body(bob.identity, bob.endpoint, now())
        response = await client._http.post(
            REGISTER, content=body, headers=signed_headers(bob.identity, registry, body)
        )
        listing = await client._http.get("/api/v1/peers")
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "ok"
    assert [(p["endpoint"], p["public_key"]) for p in answer["peers"]] == [
        (alice.endpoint, alice.identity.public_key_b64),
        (bob.endpoint, bob.identity.public_key_b64),
    ]
    assert listing.status_code == 200
    assert listing.headers["content-type"] == "application/json"
    items = listing.json()
    assert isinstance(items, list)
    assert items == answer["peers"]
    for item in items:
        assert set(item) == {"endpoint", "public_key", "node_id", "statement", "signature"}
        assert "metadata" not in item["statement"]  # nothing but endpoint and key by default


async def test_a_registration_signed_with_another_key_is_refused(
    registry: LiveRegistry, homes: dict[str, Home]
) -> None:
    alice = homes["alice"]
    mallory = NodeIdentity.generate()
    genuine = registration_body(alice.identity, alice.endpoint, now())
    response = await post(registry, genuine, signed_headers(mallory, registry, genuine))
    assert response.status_code == 401
    assert response.json()["error"] == "signature rejected"
    assert "key not proven" in response.json()["reason"]
    unsigned = await post(registry, genuine, {"content-type": "application/json"})
    assert (unsigned.status_code, unsigned.json()["reason"]) == (401, "missing signature")
    async with registry.client() as client:
        assert (await client.peers()).entries == ()


async def test_a_statement_not_signed_by_its_key_is_refused(
    registry: LiveRegistry, homes: dict[str, Home]
) -> None:
    alice = homes["alice"]
    body = orjson.loads(registration_body(alice.identity, alice.endpoint, now()))
    body["statement"]["endpoint"] = "https://127.0.0.1:9"
    body["endpoint"] = "https://127.0.0.1:9"
    raw = orjson.dumps(body)
    response = await post(registry, raw, signed_headers(alice.identity, registry, raw))
    assert response.status_code == 422
    assert response.json()["error"] == "invalid statement"
    assert "bad signature" in response.json()["reason"]


async def test_a_replayed_registration_is_refused(
    registry: LiveRegistry, homes: dict[str, Home]
) -> None:
    alice = homes["alice"]
    body = registration_body(alice.identity, alice.endpoint, now() - 5)
    headers = signed_headers(alice.identity, registry, body)
    assert (await post(registry, body, headers)).status_code == 200
    replay = await post(registry, body, headers)
    assert replay.status_code == 401
    assert "replayed" in replay.json()["reason"]
    # A fresh request carrying an older statement is refused too: statements only move forward.
    async with registry.client() as client:
        await client.register(alice.identity, alice.endpoint)
    older = registration_body(alice.identity, alice.endpoint, now() - 5)
    stale = await post(registry, older, signed_headers(alice.identity, registry, older))
    assert stale.status_code == 409
    assert "replayed or out-of-order" in stale.json()["reason"]


async def test_expired_registrations_are_refused(
    registry: LiveRegistry, homes: dict[str, Home]
) -> None:
    alice = homes["alice"]
    expired = registration_body(alice.identity, alice.endpoint, now() - 3600)
    response = await post(registry, expired, signed_headers(alice.identity, registry, expired))
    assert (response.status_code, response.json()["error"]) == (422, "invalid statement")
    assert "expired" in response.json()["reason"]
    body = registration_body(alice.identity, alice.endpoint, now())
    old_clock = FakeClock(datetime.now(UTC) - timedelta(minutes=10))
    stale_request = await post(
        registry, body, signed_headers(alice.identity, registry, body, clock=old_clock)
    )
    assert stale_request.status_code == 401
    assert "outside window" in stale_request.json()["reason"]
    too_long = registration_body(alice.identity, alice.endpoint, now(), lifetime=86_400)
    response = await post(registry, too_long, signed_headers(alice.identity, registry, too_long))
    assert response.status_code == 422
    assert "lifetime" in response.json()["reason"]


async def test_an_endpoint_claiming_another_nodes_key_is_rejected(
    registry: LiveRegistry, homes: dict[str, Home]
) -> None:
    alice, bob = homes["alice"], homes["bob"]
    async with registry.client() as client:
        await client.register(alice.identity, alice.endpoint)
        with pytest.raises(RegistryRefusal) as refused:
            await client.register(bob.identity, alice.endpoint)
        listed = await client.peers()
    assert refused.value.status == 409
    assert "another key" in refused.value.reason
    assert [e.node_id for e in listed.entries] == [alice.identity.node_id]


async def test_a_node_withdraws_and_may_come_back(
    registry: LiveRegistry, homes: dict[str, Home]
) -> None:
    alice, bob = homes["alice"], homes["bob"]
    async with registry.client() as client:
        await client.register(alice.identity, alice.endpoint)
        await client.register(bob.identity, bob.endpoint)
        await client.withdraw(alice.identity, alice.endpoint)
        assert [e.node_id for e in (await client.peers()).entries] == [bob.identity.node_id]
        await client.register(alice.identity, alice.endpoint)
        assert {e.node_id for e in (await client.peers()).entries} == {
            bob.identity.node_id,
            alice.identity.node_id,
        }


async def test_only_the_key_itself_can_withdraw(
    registry: LiveRegistry, homes: dict[str, Home]
) -> None:
    alice = homes["alice"]
    mallory = NodeIdentity.generate()
    async with registry.client() as client:
        await client.register(alice.identity, alice.endpoint)
        info = await client.describe()
        statement = Statement(
            StatementKind.WITHDRAWAL,
            alice.identity.public_key_b64,
            alice.endpoint,
            now() + 1,
            now() + 900,
        )
        raw = sign_statement(statement, alice.identity).raw  # even a genuine withdrawal...
        body = orjson.dumps(
            {
                "statement": dict(raw),
                "signature": sign_statement(statement, alice.identity).signature,
            }
        )
        path = f"/api/v1/nodes/{alice.identity.node_id}"
        headers = MessageSigner(mallory).sign_request(  # ...sent by someone else is refused
            method="DELETE", path=path, query=None, body=body, recipient=info.node_id
        )
        response = await client._http.request(
            "DELETE",
            path,
            content=body,
            headers={"content-type": "application/json", **dict(headers.headers)},
        )
        assert response.status_code == 401
        assert [e.node_id for e in (await client.peers()).entries] == [alice.identity.node_id]


async def test_large_lists_page_with_since(registry: LiveRegistry) -> None:
    nodes = [NodeIdentity.generate() for _ in range(5)]
    async with registry.client() as client:
        for i, node in enumerate(nodes):
            await client.register(node, f"https://127.0.0.1:{4000 + i}")
        first = await client._http.get("/api/v1/peers", params={"limit": 2})
        assert len(first.json()) == 2
        cursor = int(first.headers["x-next-since"])
        assert first.headers["link"] == f'</api/v1/peers?since={cursor}&limit=2>; rel="next"'
        everything = await client.all_peers(limit=2)
        assert [e.node_id for e in everything.entries] == [n.node_id for n in nodes]
        assert not everything.rejected
        await client.register(nodes[1], "https://127.0.0.1:4001")  # a refresh moves to the end
        changed = await client.peers(since=everything.next_since)
        assert [e.node_id for e in changed.entries] == [nodes[1].node_id]
        assert not changed.more


async def test_published_metadata_is_served(registry: LiveRegistry, homes: dict[str, Home]) -> None:
    alice = homes["alice"]
    profile = Profile(display_name="Example University CSIRT", sectors=("education", "research"))
    async with registry.client() as client:
        await client.register(alice.identity, alice.endpoint, profile=profile)
        (entry,) = (await client.peers()).entries
    assert entry.statement.profile == profile
    assert entry.raw["metadata"] == {
        "display_name": "Example University CSIRT",
        "sectors": ["education", "research"],
    }


async def test_restart_loses_nothing(homes: dict[str, Home], registry_db: str) -> None:
    nodes = [homes[name] for name in ("alice", "bob", "carol")]
    async with serve_registry(homes["registry"], registry_db) as first, first.client() as client:
        done = [await client.register(node.identity, node.endpoint) for node in nodes]
        before = (await client._http.get("/api/v1/peers")).content
        instance = (await client.describe()).instance
    async with serve_registry(homes["registry"], registry_db) as second, second.client() as client:
        assert (await client._http.get("/api/v1/peers")).content == before
        assert (await client.describe()).instance == instance
        # Refreshes carry on (a node keeps its last issued_at, as discovery does in its store) ...
        client.remember_issued(nodes[0].identity.node_id, done[0].issued_at)
        refreshed = await client.register(nodes[0].identity, nodes[0].endpoint)
        assert refreshed.issued_at > done[0].issued_at
        # ... and a statement older than the stored one is refused even with a fresh request.
        old = registration_body(nodes[1].identity, nodes[1].endpoint, done[1].issued_at - 1)
        replay = await client._http.post(
            REGISTER, content=old, headers=signed_headers(nodes[1].identity, second, old)
        )
        assert replay.status_code == 409
        assert len((await client.all_peers()).entries) == 3


async def test_an_unreachable_registry_is_a_registry_error() -> None:
    url = f"https://127.0.0.1:{closed_port()}"
    async with RegistryClient(url, verify=registry_tls_context(), timeout=2) as client:
        with pytest.raises(RegistryError, match="unreachable"):
            await client.peers()
