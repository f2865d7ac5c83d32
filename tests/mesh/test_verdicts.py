"""Verdicts on a real mesh: three ``dtim node run`` processes in 2-second rounds (hard stop 60 s).

An indicator reported by ``n0`` reaches every node; the analyst at ``n1``
marks it false positive with ``dtim indicators verdict`` against n1's store
while n1 runs; the signed tombstone reaches every node, which marks the
indicator (confidence 0, kept out of every export), and a later sighting at
the origin does not bring it back.

In a line A—B—C (A and C have not approved each other) a verdict given at A
reaches C through B, which relays the tombstone: C checks it against the key
it carries and applies it although it never approved A.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

import pytest

from dtim.model.indicator import VERDICT_FIELD
from tests.mesh.cluster import INTERVAL, Mesh, MeshNode, dtim, indicators, public_ips

pytestmark = pytest.mark.timeout(240)

ROUNDS = 5
SLACK = 6.0
"""Seconds for scheduling on a busy 2-core machine."""


@pytest.fixture(scope="module")
def mesh(mesh_of: Callable[..., Mesh]) -> Mesh:
    return mesh_of(3)


@pytest.fixture(scope="module")
def line(mesh_of: Callable[..., Mesh]) -> Mesh:
    """A—B—C: only neighbours approve each other."""
    return mesh_of(3, links=[(0, 1), (1, 2)], outsider=False)


def row(node: MeshNode, value: str) -> tuple[int, str, dict[str, object]] | None:
    """(confidence, scope, custom fields) of one value in the node's store, or None."""
    with sqlite3.connect(f"file:{node.database}?mode=ro", uri=True, timeout=5) as conn:
        found = conn.execute(
            "SELECT confidence, scope, custom_fields FROM indicators WHERE value = ?", (value,)
        ).fetchone()
    return None if found is None else (int(found[0]), str(found[1]), json.loads(found[2]))


def suppressed(node: MeshNode, value: str) -> bool:
    """The node holds the value marked false positive: confidence 0, local, the verdict recorded."""
    held = row(node, value)
    if held is None:
        return False
    confidence, scope, fields = held
    verdict = fields.get(VERDICT_FIELD)
    return (
        confidence == 0
        and scope == "local"
        and isinstance(verdict, dict)
        and verdict.get("verdict") == "false_positive"
    )


def test_false_positive_from_one_analyst_converges_on_every_node(mesh: Mesh) -> None:
    value = public_ips(1, start=7100)[0]
    mesh[0].add(indicators([value], confidence=80))
    mesh.wait_for(
        lambda: all(value in n.values() for n in mesh.nodes),
        "the indicator reaches every node",
        ROUNDS * INTERVAL * 1.2 + SLACK + 4 * INTERVAL,  # plus the Dandelion++ origin hold
    )

    done = json.loads(
        dtim(
            "indicators",
            "verdict",
            value,
            "false-positive",
            "--reason",
            "our own scanner",
            "--home",
            str(mesh[1].home),
            "--json",
        ).stdout
    )
    assert done["verdict"] == "false_positive"
    assert done["shared"] is True
    assert done["confidence"] == 0
    assert done["tombstone"]
    assert suppressed(mesh[1], value)

    took = mesh.wait_for(
        lambda: all(suppressed(n, value) for n in mesh.nodes),
        "every node marks the indicator false positive",
        ROUNDS * INTERVAL * 1.2 + SLACK,
    )
    assert took < ROUNDS * INTERVAL * 1.2 + SLACK
    # The analyst's reason stays on the analyst's node.
    for node in (mesh[0], mesh[2]):
        held = row(node, value)
        assert held is not None
        verdict = held[2][VERDICT_FIELD]
        assert isinstance(verdict, dict)
        assert "reason" not in verdict
        assert verdict["issuer"] == mesh[1].node_id

    # The origin sees it again: the verdict still stands there and everywhere.
    mesh[0].add(indicators([value], confidence=95))
    settle = time.monotonic() + 3 * INTERVAL
    while time.monotonic() < settle:
        assert all(suppressed(n, value) for n in mesh.nodes), mesh.logs()
        time.sleep(0.2)  # sampling that the state holds over three rounds


def test_a_verdict_crosses_a_line_to_a_node_that_never_approved_its_issuer(line: Mesh) -> None:
    a, b, c = line.nodes
    # A and C approved only B; B approved both.
    assert [p["endpoint"] for p in a.peers] == [b.url]
    assert [p["endpoint"] for p in c.peers] == [b.url]
    value = public_ips(1, start=7300)[0]
    a.add(indicators([value], confidence=80))
    line.wait_for(
        lambda: value in c.values(),
        "A's indicator reaches C through B",
        2 * ROUNDS * INTERVAL * 1.2 + SLACK + 4 * INTERVAL,  # two hops, the Dandelion++ hold
    )

    done = json.loads(
        dtim(
            "indicators", "verdict", value, "false-positive", "--home", str(a.home), "--json"
        ).stdout
    )
    assert done["shared"] is True
    # One round to B, one more to C, with slack for a round that just started.
    bound = 4 * INTERVAL * 1.2 + SLACK
    took = line.wait_for(
        lambda: suppressed(b, value) and suppressed(c, value),
        "C marks the indicator false positive, issued by A and relayed by B",
        bound,
    )
    assert took < bound
    held = row(c, value)
    assert held is not None
    verdict = held[2][VERDICT_FIELD]
    assert isinstance(verdict, dict)
    assert verdict["issuer"] == a.node_id
