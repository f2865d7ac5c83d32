"""``kill -9`` a node while its ufw watcher commits a large log; nothing lost, nothing doubled.

Sightings and the tail position are committed in one transaction, so after
any number of crashes the store holds exactly one sighting per blocked line
up to the saved position, and a restart reads on from there to the same
totals as the log's ground truth (and as a one-shot ``dtim ingest``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosNode, append_config, integrity, wait_for
from tests.chaos.logs import EVERY_LINE_RULES, blocked_lines_before, write_ufw_log
from tests.mesh.cluster import dtim

pytestmark = pytest.mark.timeout(300)

Homes = Callable[[Sequence[str]], list[ChaosNode]]


def sightings(node: ChaosNode) -> int:
    """Sightings rows committed so far."""
    rows = node.query("SELECT count(*) FROM sightings")
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]  # sqlite returns int


def saved_offset(node: ChaosNode) -> int:
    """The ufw watcher's committed byte offset (0 before its first commit)."""
    rows = node.query("SELECT \"offset\" FROM tail_positions WHERE watcher = 'ufw'")
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]  # sqlite returns int


def per_value(node: ChaosNode) -> Counter[str]:
    """Sighting rows per indicator value."""
    rows = node.query(
        "SELECT i.value, count(*) FROM sightings s JOIN indicators i ON i.id = s.indicator_id "
        "GROUP BY i.value"
    )
    return Counter({str(value): int(count) for value, count in rows})  # type: ignore[call-overload]


def watcher_node(homes: Homes, log: Path) -> ChaosNode:
    """A node whose ufw watcher reads ``log`` from its beginning, one sighting per line."""
    (node,) = homes(["w"])
    append_config(node, EVERY_LINE_RULES)
    node.settings.update(
        DTIM__WATCHERS__UFW_LOG_PATH=str(log),
        DTIM__WATCHERS__START_AT="beginning",
    )
    return node


def crash_and_recover(node: ChaosNode, log: Path, kills: int) -> list[int]:
    """Kill the node ``kills`` times while it commits, each time at a later point; returns
    the sightings committed at each kill. Checks the store after every crash."""
    total_bytes = log.stat().st_size
    committed: list[int] = []
    for _ in range(kills):
        node.start()
        before = sightings(node)
        # Kill as soon as one more batch has landed: the next is being parsed or committed.
        wait_for(lambda b=before: sightings(node) > b, "a new commit", 60, [node])  # type: ignore[misc]
        node.sigkill()
        assert integrity(node.database) == "ok"
        offset = saved_offset(node)
        assert 0 < offset < total_bytes, "the kill must land before the log was read"
        # The invariant of the one transaction: rows match the lines before the position.
        assert sightings(node) == blocked_lines_before(log, offset)
        committed.append(sightings(node))
    return committed


def test_kill_during_ingestion_loses_and_doubles_nothing(homes: Homes, tmp_path: Path) -> None:
    log = tmp_path / "ufw.log"
    truth = write_ufw_log(log, attackers=600)
    node = watcher_node(homes, log)
    committed = crash_and_recover(node, log, kills=1)
    assert 0 < committed[0] < sum(truth.values())

    node.start()
    wait_for(lambda: saved_offset(node) == log.stat().st_size, "the whole log read", 90, [node])
    node.stop()
    assert integrity(node.database) == "ok"
    assert per_value(node) == truth
    assert node.exits == [-9]


@pytest.mark.slow
def test_repeated_kills_match_a_one_shot_ingest(homes: Homes, tmp_path: Path) -> None:
    log = tmp_path / "ufw.log"
    truth = write_ufw_log(log, attackers=5000, seed=23)
    node = watcher_node(homes, log)
    committed = crash_and_recover(node, log, kills=4)
    assert committed == sorted(committed)
    assert len(set(committed)) == 4

    node.start()
    wait_for(lambda: saved_offset(node) == log.stat().st_size, "the whole log read", 240, [node])
    node.stop()
    assert integrity(node.database) == "ok"
    assert per_value(node) == truth
    # A one-shot run of the same watcher over the same file detects the same counts.
    out = dtim("ingest", "ufw", str(log), "--json", "--home", str(node.home), timeout=240).stdout
    detected = Counter({d["value"]: d["sightings"] for d in map(json.loads, out.splitlines())})
    assert detected == truth
