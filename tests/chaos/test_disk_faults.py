"""A full disk and a read-only store: the node says so clearly and corrupts nothing.

The database lives on :class:`tests.chaos.disk.SmallDisk`. Whatever fails, the
SQLite file passes ``PRAGMA integrity_check``, what was stored before is
still there, sightings still match the lines before the saved tail position
(one transaction each), and once there is room again the node reads on to
exactly the log's ground truth: by itself when the disk grows under it (a
tmpfs), after a restart when the room is a file-size limit of the next process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests.chaos.disk import SmallDisk
from tests.chaos.harness import ChaosNode, append_config, integrity, wait_for
from tests.chaos.logs import EVERY_LINE_RULES, blocked_lines_before, write_ufw_log
from tests.chaos.test_watcher_crash import per_value, saved_offset, sightings
from tests.mesh.cluster import indicators, public_ips

pytestmark = pytest.mark.timeout(300)

Homes = Callable[[Sequence[str]], list[ChaosNode]]
DISK_BYTES = 3 * 1024 * 1024


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A small filesystem for one node's database."""
    made = SmallDisk.make(tmp_path / "disk", DISK_BYTES)
    try:
        yield made
    finally:
        made.close()


def node_on(homes: Homes, disk: SmallDisk) -> ChaosNode:
    """A node whose database lives on ``disk``."""
    (node,) = homes(["d"])
    node.keep_database_at(disk.path / "dtim.db")
    node.preexec = disk.preexec()
    return node


FULL = re.compile(
    r"database write failed, nothing was changed: (database or disk is full|disk I/O error)"
)
READ_ONLY = re.compile(
    r"error: cannot migrate the database schema at sqlite:///\S+dtim\.db: .* is read-only"
)


def watch(node: ChaosNode, log: Path) -> None:
    """Turn on the node's ufw watcher over ``log`` from its start, one sighting per line."""
    append_config(node, EVERY_LINE_RULES)
    node.settings.update(
        DTIM__WATCHERS__UFW_LOG_PATH=str(log), DTIM__WATCHERS__START_AT="beginning"
    )


def ended(node: ChaosNode) -> bool:
    """The process has exited."""
    return node.process is not None and node.process.poll() is not None


def assert_reported(node: ChaosNode, pattern: re.Pattern[str]) -> None:
    """The node exited 1 with one clear error line: no traceback, no SQL, no parameters."""
    text = node.log_text()
    assert node.process is not None
    assert node.process.returncode == 1, text[-3000:]
    assert pattern.search(text), text[-3000:]
    for noise in ("Traceback", "ExceptionGroup", "[SQL:", "[parameters:"):
        assert noise not in text, text[-3000:]


def assert_consistent(node: ChaosNode, log: Path, earlier: list[str]) -> None:
    """Integrity, earlier data intact, sightings exactly the lines before the saved position."""
    assert integrity(node.database) == "ok"
    stored = {str(r[0]) for r in node.query("SELECT value FROM indicators")}
    assert set(earlier) <= stored
    assert sightings(node) == blocked_lines_before(log, saved_offset(node))


def finish(node: ChaosNode, log: Path) -> None:
    """Restart (there is room again): the node reads the rest of the log, then stops cleanly."""
    node.start()
    wait_for(lambda: saved_offset(node) == log.stat().st_size, "the rest of the log", 120, [node])
    node.stop()
    assert integrity(node.database) == "ok"


def test_disk_full_during_ingestion(homes: Homes, disk: SmallDisk, tmp_path: Path) -> None:
    log = tmp_path / "ufw.log"
    truth = write_ufw_log(log, attackers=600)
    node = node_on(homes, disk)
    earlier = public_ips(50)
    node.add(indicators(earlier))  # stored before the watcher fills the disk
    watch(node, log)
    node.start()
    # The node stays up, says why it is not ready, and logs the reason once, plainly.
    wait_for(lambda: node.readyz() == 503, "/readyz to report the full disk", 120, [node])
    assert not ended(node)
    answer = httpx.get(f"http://127.0.0.1:{node.admin_port}/readyz", timeout=5).json()
    assert re.fullmatch(
        r"writes failing: (database or disk is full|disk I/O error)", answer["failing"]["store"]
    ), answer
    text = node.log_text()
    assert FULL.search(text), text[-3000:]
    for noise in ("Traceback", "ExceptionGroup", "[SQL:", "[parameters:"):
        assert noise not in text, text[-3000:]
    assert_consistent(node, log, earlier)
    assert saved_offset(node) < log.stat().st_size, "the log fitted: the disk never filled"

    disk.grow(64 * 1024 * 1024)
    if disk.mounted:  # room under the running node: it reads on by itself
        wait_for(lambda: saved_offset(node) == log.stat().st_size, "the rest of the log", 120)
        wait_for(node.ready, "/readyz to recover", 30, [node])
        node.stop()
        assert integrity(node.database) == "ok"
    else:  # the file-size limit is the process's own: the next one has room
        node.stop()
        node.preexec = disk.preexec()
        finish(node, log)
    assert per_value(node) == truth


def test_read_only_store_at_start(homes: Homes, disk: SmallDisk, tmp_path: Path) -> None:
    if not disk.mounted and os.geteuid() == 0:
        pytest.skip("root ignores file permissions, and mounting a tmpfs was refused here")
    node = node_on(homes, disk)
    earlier = public_ips(20)
    node.add(indicators(earlier))
    disk.read_only(True)
    node.start()
    wait_for(
        lambda: ended(node), "the node to refuse the read-only store", 60, [node], may_exit=True
    )
    assert_reported(node, READ_ONLY)
    disk.read_only(False)
    assert integrity(node.database) == "ok"
    assert {str(r[0]) for r in node.query("SELECT value FROM indicators")} == set(earlier)
