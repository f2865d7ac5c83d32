"""The registry client against registries that misbehave (httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from dtim.crypto.identity import NodeIdentity
from dtim.errors import RegistryError
from dtim.registry.client import (
    MIN_HEARTBEAT,
    RegistryClient,
    RegistryRefusal,
    registry_tls_context,
)
from dtim.registry.statements import MAX_STATEMENT_LIFETIME

DESCRIPTION = {
    "node_id": "ab" * 32,
    "public_key": NodeIdentity.generate().public_key_b64,
    "fingerprint": "SHA256:x",
    "instance": "i1",
    "heartbeat_seconds": 300,
    "entry_lifetime_seconds": 900,
    "max_lifetime_seconds": 1200,
    "page_size": 500,
}


def client(handler: Callable[[httpx.Request], httpx.Response]) -> RegistryClient:
    return RegistryClient(
        "https://registry.test",
        verify=registry_tls_context(),
        transport=httpx.MockTransport(handler),
    )


async def test_a_registry_cannot_make_nodes_hammer_it_or_sign_long_lived_statements() -> None:
    greedy = {**DESCRIPTION, "heartbeat_seconds": 2, "entry_lifetime_seconds": 10**9}
    async with client(lambda _r: httpx.Response(200, json=greedy)) as registry:
        info = await registry.describe()
    assert info.heartbeat_seconds == MIN_HEARTBEAT
    assert info.entry_lifetime_seconds == MAX_STATEMENT_LIFETIME


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b"<html>"),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={**DESCRIPTION, "node_id": 7}),
        httpx.Response(200, json={**DESCRIPTION, "page_size": True}),
        httpx.Response(200, json={k: v for k, v in DESCRIPTION.items() if k != "instance"}),
    ],
)
async def test_malformed_descriptions_are_registry_errors(answer: httpx.Response) -> None:
    async with client(lambda _r: answer) as registry:
        with pytest.raises(RegistryError, match=r"registry https://registry\.test"):
            await registry.describe()


async def test_refusals_carry_the_status_and_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/registry":
            return httpx.Response(200, json=DESCRIPTION)
        return httpx.Response(503, content=b"upstream down")

    async with client(handler) as registry:
        with pytest.raises(RegistryRefusal) as refused:
            await registry.register(NodeIdentity.generate(), "https://n.example:3030")
        with pytest.raises(RegistryRefusal, match="upstream down"):
            await registry.peers()
    assert (refused.value.status, refused.value.reason) == (503, "upstream down")


async def test_a_list_that_is_not_an_array_is_refused_and_bad_items_are_set_aside() -> None:
    node = NodeIdentity.generate()
    answers = iter(
        [
            httpx.Response(200, json={"peers": []}),
            httpx.Response(
                200,
                content=orjson.dumps(
                    [{"endpoint": "https://x", "public_key": node.public_key_b64}, 5]
                ),
                headers={"x-next-since": "9"},
            ),
        ]
    )
    async with client(lambda _r: next(answers)) as registry:
        with pytest.raises(RegistryError, match="JSON array"):
            await registry.peers()
        page = await registry.peers(since=3)
    assert page.entries == ()
    assert [(r.endpoint, r.node_id) for r in page.rejected] == [("https://x", None), (None, None)]
    assert (page.next_since, page.more) == (9, False)
