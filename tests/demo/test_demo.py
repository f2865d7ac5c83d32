"""``dtim demo`` end to end: a registry and three real nodes detect attacks in their own logs,
share them, leak none of the internal canaries, and leave no process or port behind."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from dtim.demo.generator import EICAR

DURATION = 60
"""Seconds the demo runs: discovery (registry heartbeat 10 s), approval, detection, gossip."""


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_three_nodes_share_what_they_detect_and_leak_nothing(tmp_path: Path) -> None:
    command = ["demo", "--nodes", "3", "--duration", str(DURATION), "--json", "--keep"]
    result = subprocess.run(
        [sys.executable, "-m", "dtim.cli", *command],
        capture_output=True,
        text=True,
        timeout=DURATION + 180,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    directory = summary["directory"]
    try:
        nodes = summary["nodes"]
        assert set(nodes) == {"node1", "node2", "node3"}
        for name, node in nodes.items():
            assert node["detected"] > 0, (name, node)
            # Indicators it did not detect itself: they came from the other nodes.
            assert node["received"] > 0, (name, node)
        assert summary["leaks"] == []
        assert summary["indicators_everywhere"] > 0
        levels = {node["privacy_level"] for node in nodes.values()}
        assert levels == {"strict", "moderate", "open"}
        strict = summary["examples"]["node2"]
        assert strict is not None
        assert "confidence" not in strict  # strict shares type and value only
        # The infected file dropped on one node: its hashes reach every node (with ClamAV).
        assert summary["clamav"] is (shutil.which("clamscan") is not None)
        if summary["clamav"]:
            eicar = hashlib.sha256(EICAR.encode()).hexdigest()
            row = next(row for row in summary["indicators"] if row["value"] == eicar)
            assert row["detected_by"] == ["node3"]
            assert row["nodes"] == 3
        assert processes_mentioning(directory) == []
        for node in nodes.values():
            assert port_is_closed(int(urlsplit(node["dashboard"]).port or 0))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
