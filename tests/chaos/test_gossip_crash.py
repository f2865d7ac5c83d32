"""``kill -9`` a node in the middle of gossip; after restart its store is sound and gossip
catches up: every report of the other node arrives, once.

The originator shares 2,000 reports; a peer takes at most 1,000 new ones per
round (``network.max_new_reports_per_peer``), so the exchange spans rounds
and the kill lands while reports are still flowing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from tests.chaos.harness import ChaosNode, integrity, wait_for
from tests.mesh.cluster import approve_all, indicators, public_ips

pytestmark = pytest.mark.timeout(300)

Homes = Callable[[Sequence[str]], list[ChaosNode]]
REPORTS = 2000


def arrived(node: ChaosNode, values: set[str]) -> int:
    """How many of ``values`` the node stores."""
    return len(values & node.values())


def exchange(homes: Homes) -> tuple[ChaosNode, ChaosNode, set[str]]:
    """Two nodes approved to each other; the first now holds :data:`REPORTS` own reports."""
    origin, receiver = homes(["origin", "receiver"])
    approve_all([origin, receiver], {})
    for node in (origin, receiver):
        node.start()
    nodes = [origin, receiver]
    wait_for(lambda: origin.pinned() >= 1 and receiver.pinned() >= 1, "pinned", 90, nodes)
    values = public_ips(REPORTS, start=30000)
    origin.add(indicators(values))
    return origin, receiver, set(values)


def kill_mid_exchange(victim: ChaosNode, receiver: ChaosNode, values: set[str]) -> int:
    """SIGKILL ``victim`` once the receiver has some but not all reports; returns how many."""
    nodes = [victim, receiver]
    wait_for(lambda: arrived(receiver, values) > 0, "the first reports", 60, nodes)
    victim.sigkill()
    count = arrived(receiver, values)
    assert count < len(values), "the exchange finished before the kill"
    assert integrity(victim.database) == "ok"
    return count


def catch_up(origin: ChaosNode, receiver: ChaosNode, values: set[str], victim: ChaosNode) -> None:
    """Restart the victim; every report arrives; both stores are sound afterwards."""
    victim.start()
    nodes = [origin, receiver]
    wait_for(lambda: arrived(receiver, values) == len(values), "every report", 120, nodes)
    for node in nodes:
        node.stop()
        assert integrity(node.database) == "ok"
    rows = receiver.query("SELECT count(*), count(DISTINCT value) FROM indicators")
    assert rows[0][0] == rows[0][1], "an indicator stored twice"


def test_receiver_killed_mid_exchange_catches_up(homes: Homes) -> None:
    origin, receiver, values = exchange(homes)
    kill_mid_exchange(receiver, receiver, values)
    catch_up(origin, receiver, values, receiver)
    assert receiver.exits == [-9]


@pytest.mark.slow
def test_originator_killed_mid_exchange_catches_up(homes: Homes) -> None:
    origin, receiver, values = exchange(homes)
    kill_mid_exchange(origin, receiver, values)
    catch_up(origin, receiver, values, origin)
    assert origin.exits == [-9]
