"""Attack logs for the fault tests (the demo generator's lines) and their ground truth."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dtim.demo.generator import AttackPlan, ufw_scan

EVERY_LINE_RULES = """
[watchers.ufw.ufw-port-scan]
enabled = false

[watchers.ufw.ufw-block-flood]
threshold = 1
cooldown = 0
"""
"""ufw rules under which every blocked line is one sighting.

Detection windows live in memory; with a threshold of 1 and no cooldown a
restart cannot change what a line detects, so any difference from the ground
truth is a lost or doubled commit.
"""


def write_ufw_log(path: Path, attackers: int, *, seed: int = 11) -> Counter[str]:
    """Write port scans of ``attackers`` public addresses (14 blocked lines each) and a
    malformed line every 1000 lines; returns blocked lines per source address."""
    plan = AttackPlan(seed=seed)
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=2)
    truth: Counter[str] = Counter()
    written = 0
    with path.open("w", encoding="utf-8") as log:
        for i in range(attackers):
            address = plan.public_address()
            for line in ufw_scan(address, start + timedelta(seconds=i % 3600), rng):
                log.write(line + "\n")
                truth[address] += 1
                written += 1
                if written % 1000 == 0:
                    log.write("Nov 31 99:99:99 garbage kernel: [UFW BLOCK] SRC=\n")
    return truth


def blocked_lines_before(path: Path, offset: int) -> int:
    """How many well-formed blocked lines end at or before byte ``offset``."""
    with path.open("rb") as log:
        head = log.read(offset)
    return sum(
        1 for line in head.splitlines() if b"[UFW BLOCK]" in line and not line.endswith(b"SRC=")
    )
