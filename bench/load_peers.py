"""The simulated peers of ``bench/load.py``: real nodes' gossip halves in one event loop.

Each peer is a :class:`tests.gossip.localnode.LocalNode`: its own identity,
certificates and SQLite store, the gossip runtime ``dtim node run`` builds,
and its peer API on 127.0.0.1 (mutual TLS, signed requests and responses).
Each approves the node under load (key and CA pinned), runs the real gossip
rounds against it, and reports indicators of its own at a steady rate for
the first part of the run (then only re-sights them, so the set of items
levels off and memory can too).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from load_traffic import Timings, time_calls
from tests.gossip.localnode import LocalNode, indicator, local_nodes, public_ips
from tests.mesh.cluster import MeshNode

from dtim.config import Settings
from dtim.model import Peer, PeerId, PeerStatus
from dtim.service import spawn


@contextlib.asynccontextmanager
async def peers(
    root: Path, count: int, *, interval: float, request_timeout: float
) -> AsyncIterator[list[LocalNode]]:
    """``count`` running peers (gossip rounds not started yet)."""
    base = Settings()
    network = replace(
        base.network,
        gossip_interval_seconds=interval,
        peers_per_round=1,
        request_timeout_seconds=request_timeout,
    )
    names = [f"peer{i:02d}" for i in range(count)]
    async with local_nodes(root, names, settings=replace(base, network=network)) as nodes:
        yield nodes


async def approve_node(peer: LocalNode, node: MeshNode, ca_pem: str, fingerprint: str) -> None:
    """The peer approves the node under load (key and CA pinned), effective at once."""
    now = datetime.now(UTC)
    await peer.store.save_peer(
        Peer(
            id=PeerId(node.node_id),
            endpoint=node.url,
            public_key=node.public_key,
            fingerprint=fingerprint,
            status=PeerStatus.APPROVED,
            added_at=now,
        )
    )
    await peer.runtime.items.pin_peer_ca(node.node_id, ca_pem, now=now)
    await peer.runtime.directory.refresh(force=True)


def time_requests(peer: LocalNode, timings: Timings) -> None:
    """Time every request the peer's gossip makes to the node."""
    transport: Any = peer.runtime.transport
    transport._call = time_calls(timings, "", transport._call)


def pool_of(index: int, size: int, shared: Sequence[str]) -> list[str]:
    """The values peer ``index`` reports: its own addresses, and every fifth one shared."""
    own = public_ips(size, start=index * size)
    return [shared[i % len(shared)] if i % 5 == 4 else value for i, value in enumerate(own)]


async def feed(peer: LocalNode, values: Sequence[str], rate: float, fresh: float) -> None:
    """Report ``rate`` indicators/s: new values for ``fresh`` seconds, then re-sightings.

    Runs until cancelled (at the end of the run), storing a second's reports at a time.
    """
    loop = asyncio.get_running_loop()
    began = loop.time()
    made = 0
    while True:
        elapsed = loop.time() - began
        due = int(rate * elapsed) - made
        if due > 0:
            if elapsed < fresh:
                chosen = [values[(made + i) % len(values)] for i in range(due)]
            else:
                chosen = [values[(made * 7 + i) % len(values)] for i in range(due)]
            await peer.add(*(indicator(v, tags=["ssh-bruteforce"]) for v in chosen))
            made += due
        await asyncio.sleep(1.0)


def start(peers_: Sequence[LocalNode]) -> list[asyncio.Task[Any]]:
    """Start every peer's gossip rounds."""
    return [spawn(p.runtime.loop.run(), name=f"{p.name}-gossip-rounds") for p in peers_]
