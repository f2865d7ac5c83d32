from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dtim.model import Evidence, Sighting, make_indicator
from dtim.sensor.client import NodeClient, NodeUnreachable, SubmissionRefused, tls_context
from dtim.sensor.queue import SensorQueue
from dtim.sensor.runtime import Forwarder
from tests.mesh.cluster import free_port
from tests.sensor.conftest import Node, drop_connections, node_app
from tests.servers import running_server

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _sightings(prefix: str, count: int, line: str = "x") -> list[Sighting]:
    return [
        Sighting(
            make_indicator(f"{prefix}.{n + 1}", now=NOW, sources=["ufw"]),
            "ufw",
            "ufw-port-scan",
            NOW,
            evidence=Evidence(lines=(line,)),
        )
        for n in range(count)
    ]


async def test_a_batch_the_node_refuses_is_parked_and_the_rest_go_on(
    node: Node, tmp_path: Path
) -> None:
    queue = SensorQueue(tmp_path / "queue.db")
    await queue.open()
    await queue.commit(_sightings("45.13.11", 1), [])
    await queue.commit(_sightings("45.13.12", 200, line="y" * 200), [])  # over the node's limit
    await queue.commit(_sightings("45.13.13", 1), [])
    small = node_app(node.store, node.keyring, max_body_bytes=20_000)
    with running_server(small, ssl_context=node.server_tls, mtls=False) as up:
        client = NodeClient(up.base_url, node.token, verify=tls_context(node.ca_file), timeout=5)
        async with client:
            forwarder = Forwarder(queue, client)
            for _ in range(10):
                if not await forwarder.flush_once():
                    break
        drop_connections(up)
    backlog = await queue.backlog()
    await queue.close()
    assert (backlog.batches, backlog.parked) == (0, 1)
    assert forwarder.sent == 2
    assert await node.store.find_indicator("ipv4", "45.13.11.1") is not None
    assert await node.store.find_indicator("ipv4", "45.13.13.1") is not None
    assert await node.store.find_indicator("ipv4", "45.13.12.1") is None


async def test_a_refused_token_or_an_absent_node_keeps_everything(
    node: Node, tmp_path: Path
) -> None:
    queue = SensorQueue(tmp_path / "queue.db")
    await queue.open()
    await queue.commit(_sightings("45.13.14", 2), [])
    with running_server(node.app, ssl_context=node.server_tls, mtls=False) as up:
        wrong = NodeClient(up.base_url, node.token[:-3] + "abc", verify=tls_context(node.ca_file))
        async with wrong:
            with pytest.raises(SubmissionRefused) as refused:
                await Forwarder(queue, wrong).flush_once()
        untrusted = NodeClient(up.base_url, node.token, verify=tls_context(None), timeout=5)
        async with untrusted:  # the system store does not know the test CA
            with pytest.raises(NodeUnreachable):
                await Forwarder(queue, untrusted).flush_once()
        drop_connections(up)
    absent = NodeClient(
        f"https://127.0.0.1:{free_port()}", node.token, verify=tls_context(node.ca_file), timeout=2
    )
    async with absent:
        with pytest.raises(NodeUnreachable):
            await Forwarder(queue, absent).flush_once()
    assert refused.value.status == 401
    assert (await queue.backlog()).sightings == 2
    await queue.close()
    assert (await node.store.counts()).total == 0
