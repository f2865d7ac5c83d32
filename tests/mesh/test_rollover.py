"""Identity rollover on a mesh of real ``dtim node run`` processes (2 s rounds, hard stop 60 s).

``dtim keys rotate --identity`` runs against n0's home while n0 runs. n0
notices the new key, publishes it in its node document and presents the
rollover statement to n1, which pins the new key under the same peer id
without a new approval; gossip between them goes on with the new key, and
both audit logs record the rollover. Marked slow: a peer that was down
through a rollover, with the rotated node restarted meanwhile, still gets it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import httpx
import pytest

from dtim.crypto.tls import client_context
from dtim.model.indicator import JsonObject
from tests.mesh.cluster import INTERVAL, Mesh, MeshNode, dtim, indicators, public_ips

pytestmark = pytest.mark.timeout(240)

SLACK = 6.0
"""Seconds for scheduling on a busy 2-core machine."""


@pytest.fixture(scope="module")
def mesh(mesh_of: Callable[..., Mesh]) -> Mesh:
    return mesh_of(2)


def pinned_key(node: MeshNode, peer_id: str) -> tuple[str, str] | None:
    """(public key, status) the node holds for a peer, or None."""
    with sqlite3.connect(f"file:{node.database}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute(
            "SELECT public_key, status FROM peers WHERE id = ?", (peer_id,)
        ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def events(node: MeshNode, name: str) -> list[JsonObject]:
    """The node's audit records of one event."""
    return [e for e in node.audit() if e.get("event") == name]


def test_a_rotated_identity_reaches_the_peer_and_gossip_goes_on(mesh: Mesh) -> None:
    a, b = mesh[0], mesh[1]
    before = public_ips(1, start=7300)[0]
    a.add(indicators([before]))
    mesh.wait_for(lambda: before in b.values(), "an indicator reaches n1 before", 30)

    rotated = json.loads(
        dtim("keys", "rotate", "--identity", "--home", str(a.home), "--json").stdout
    )["rotated"]["identity"]
    assert rotated["old_node_id"] == a.node_id
    new_id = rotated["new_node_id"]
    new_key = json.loads((a.home / "keys" / "rollover.json").read_text())[-1]["new_key"]

    took = mesh.wait_for(
        lambda: pinned_key(b, a.node_id) == (new_key, "approved"),
        "n1 pins n0's new key under n0's peer id, still approved",
        30,
    )
    assert took < 10 * INTERVAL + SLACK

    context = client_context(None, None, trusted_pems=[(a.home / "certs" / "ca.crt").read_text()])
    with httpx.Client(verify=context, timeout=5) as client:
        document = client.get(a.url + "/api/v1/node").json()
    assert (document["id"], document["public_key"]) == (new_id, new_key)

    after = public_ips(1, start=7301)[0]
    a.add(indicators([after]))
    mesh.wait_for(
        lambda: after in b.values(),
        "an indicator added on n0 after the rollover reaches n1",
        8 * INTERVAL + SLACK,  # a few rounds plus the Dandelion++ origin hold
    )
    back = public_ips(1, start=7302)[0]
    b.add(indicators([back]))
    mesh.wait_for(lambda: back in a.values(), "and one from n1 reaches n0", 8 * INTERVAL + SLACK)

    assert any(e["kind"] == "identity" and e["by"] == "cli" for e in events(a, "key_rotated"))
    delivered = events(a, "rollover_delivered")
    assert [(e["peer"], e["new_node_id"]) for e in delivered] == [(b.node_id, new_id)]
    accepted = events(b, "peer_key_rolled_over")
    assert [(e["peer"], e["new_key_id"]) for e in accepted] == [(a.node_id, new_id)]
    assert not events(b, "rollover_refused")
    # Every peer has the new key: the retired one is deleted.
    assert not (a.home / "keys" / "retired" / f"{a.node_id}.key").exists()


def waiting(node: MeshNode) -> dict[str, str]:
    """Peers the node still has to tell about its rollover (its store's record)."""
    with sqlite3.connect(f"file:{node.database}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT value FROM state WHERE key = 'identity.rollout'").fetchone()
    return {} if row is None else dict(json.loads(row[0])["peers"])


@pytest.mark.slow
def test_a_peer_down_through_the_rollover_and_a_restart_gets_it_later(mesh: Mesh) -> None:
    a, b = mesh[0], mesh[1]
    b.kill()
    rotated = json.loads(
        dtim("keys", "rotate", "--identity", "--home", str(a.home), "--json").stdout
    )["rotated"]["identity"]
    new_key = json.loads((a.home / "keys" / "rollover.json").read_text())[-1]["new_key"]
    mesh.wait_for(
        lambda: waiting(a) == {b.node_id: rotated["old_node_id"]},
        "n0 records that n1 still waits",
        10,
    )
    a.stop()
    a.start()  # carries on from its store
    b.start()
    mesh.wait_for(
        lambda: pinned_key(b, a.node_id) == (new_key, "approved"),
        "n1, back, pins n0's new key",
        30,
    )
    mesh.wait_for(lambda: not waiting(a), "n0 no longer waits for anyone", 5)
    value = public_ips(1, start=7310)[0]
    a.add(indicators([value]))
    mesh.wait_for(lambda: value in b.values(), "gossip goes on", 8 * INTERVAL + SLACK)
    assert "not the configured one" not in b.log.read_text(errors="replace")
