"""Meshes of real ``dtim node run`` processes on 127.0.0.1 in 2-second rounds (hard stop 60 s).

Every scenario runs on a 3-node mesh and, marked slow, on the 5-node mesh the
issue asks for. One mesh serves each size; each test uses its own indicators
and its own nodes, so the tests hold in any order. Nodes: ``n0`` originates,
``n1`` is the RED recipient, ``amber_member`` is in n0's group ``partners``,
the last node is revoked by the one before it, then killed and restarted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from tests.mesh.cluster import INTERVAL, Mesh, dtim, indicators, public_ips

pytestmark = pytest.mark.timeout(240)

ROUNDS = 5
"""Reports must reach every node within this many rounds."""
JITTER = 0.2
SLACK = 6.0
"""Seconds for scheduling on a busy 2-core machine (six Python processes share it)."""


def amber_member(mesh: Mesh) -> str:
    """The node n0 put in its group ``partners``."""
    return "n2" if len(mesh.nodes) >= 4 else "n1"


@pytest.fixture(scope="module", params=[3, pytest.param(5, marks=pytest.mark.slow)], ids=str)
def mesh(request: pytest.FixtureRequest, mesh_of: Callable[..., Mesh]) -> Mesh:
    count: int = request.param
    member = "n2" if count >= 4 else "n1"
    return mesh_of(count, groups={("n0", member): ["partners"]})


def test_100_reports_reach_every_node_within_5_rounds(mesh: Mesh) -> None:
    values = public_ips(100)
    share = len(values) // len(mesh.nodes) + 1
    begun = time.monotonic()
    for i, node in enumerate(mesh.nodes):  # every node originates its share
        node.add(indicators(values[i * share : (i + 1) * share]))
    mesh.wait_for(
        lambda: all(set(values) <= n.values() for n in mesh.nodes),
        "100 reports on every node",
        60,
    )
    took = time.monotonic() - begun
    budget = ROUNDS * INTERVAL * (1 + JITTER) + SLACK
    assert took <= budget, f"took {took:.1f} s, more than {ROUNDS} rounds ({budget:.0f} s)"
    last = mesh.nodes[-1]
    listed = dtim("indicators", "list", "--json", "--limit", "1000", "--home", str(last.home))
    assert set(values) <= {item["value"] for item in json.loads(listed.stdout)}


def test_red_and_amber_reach_only_their_recipients(mesh: Mesh) -> None:
    red, amber, green = public_ips(3, start=1000)
    origin = mesh[0]
    member = next(n for n in mesh.nodes if n.name == amber_member(mesh))
    origin.add(indicators([red], tlp="red", recipients=[mesh[1].node_id]))
    origin.add(indicators([amber], tlp="amber", recipients=["partners"]))
    origin.add(indicators([green]))
    mesh.wait_for(
        lambda: (
            all(green in n.values() for n in mesh.nodes)
            and red in mesh[1].values()
            and amber in member.values()
        ),
        "GREEN everywhere, RED at n1, AMBER at the group member",
        30,
    )
    # The recipients gossip on: a new report from each of them reaching everyone means
    # they held more sessions with everyone since; RED and AMBER must not have followed.
    marker = public_ips(1, start=1100)[0]
    mesh[1].add(indicators([marker]))
    member.add(indicators([marker]))
    mesh.wait_for(lambda: all(marker in n.values() for n in mesh.nodes), "marker everywhere", 30)
    assert mesh[1].tlp_of(red) == "red"
    assert member.tlp_of(amber) == "amber"
    for node in mesh.nodes[1:]:
        assert (red in node.values()) == (node is mesh[1]), node.name
        assert (amber in node.values()) == (node is member), node.name


def test_unapproved_node_is_refused(mesh: Mesh) -> None:
    target, outsider = mesh[0], mesh.outsider
    assert outsider is not None
    secret = public_ips(1, start=2000)[0]
    tries = outsider.log.read_text().count("failed")
    outsider.add(indicators([secret]))
    mesh.wait_for(
        lambda: outsider.log.read_text().count("failed") > tries,
        "the outsider tried another session with n0",
        30,
    )
    try:
        answer = outsider.signed_post(target, "/api/v1/indicators/gossip", {"indicators": []})
    except httpx.HTTPError:
        pass  # refused at the TLS handshake: n0 does not trust its certificate
    else:
        pytest.fail(f"n0 answered an unapproved node: {answer.status_code} {answer.text}")
    assert secret not in target.values()
    assert all(secret not in n.values() for n in mesh.nodes)


def test_revoked_peer_is_cut_off_at_once(mesh: Mesh) -> None:
    node, peer = mesh.nodes[-2], mesh.nodes[-1]
    accepted = peer.signed_post(node, "/api/v1/indicators/gossip", {"indicators": []})
    assert accepted.status_code == 200, accepted.text
    dtim("peers", "revoke", peer.node_id[:12], "--home", str(node.home))
    revoked_at = time.time()

    def refused() -> bool:
        try:
            answer = peer.signed_post(node, "/api/v1/indicators/gossip", {"indicators": []})
        except httpx.HTTPError:
            return True
        return answer.status_code == 401

    assert mesh.wait_for(refused, "revoked peer refused", 3) < 3  # the node polls every second
    listed = json.loads(dtim("peers", "list", "--json", "--home", str(node.home)).stdout)
    assert {p["id"]: p["status"] for p in listed}[peer.node_id] == "revoked"
    marker = public_ips(1, start=3000)[0]
    node.add(indicators([marker]))
    mesh.wait_for(lambda: marker in mesh[0].values(), "news of the revoking node reach n0", 30)
    # The node reads the peer table every second: a round already under way may still
    # share within that second. (Compared as times: a cutoff cut to whole seconds left
    # anywhere between 0 and 1 s.)
    cutoff = revoked_at + 1
    records = node.audit()
    assert not [
        r
        for r in records
        if r.get("event") == "indicators_shared"
        and r.get("peer") == peer.node_id
        and datetime.fromisoformat(str(r["at"])).timestamp() > cutoff
    ], "the revoking node still sent indicators to the revoked peer"
    assert any(r.get("event") == "peer_revoked" and r.get("peer") == peer.node_id for r in records)


def test_node_killed_mid_round_catches_up_and_nobody_loses_anything(mesh: Mesh) -> None:
    victim = mesh.nodes[-1]
    survivors = mesh.nodes[:-1]
    before = {n.name: n.values() for n in mesh.nodes}
    victim.kill()
    news = public_ips(20, start=4000)
    mesh[0].add(indicators(news))
    mesh.wait_for(
        lambda: all(set(news) <= n.values() for n in survivors), "news among survivors", 30
    )
    victim.start()
    mesh.wait_for(lambda: set(news) <= victim.values(), "the restarted node caught up", 40)
    for node in mesh.nodes:
        assert before[node.name] <= node.values(), f"{node.name} lost indicators"
