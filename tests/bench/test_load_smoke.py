"""``bench/load.py`` runs end to end (a light, short load; no figure is checked here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_load_benchmark_runs_and_reports_no_errors() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            *("--quick", "--duration", "8", "--peers", "4", "--consumers", "1"),
            *("--lines-per-second", "200"),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("DTIM")},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for section in ("Throughput", "Latency per endpoint", "Errors: 0", "Memory (RSS, MB)"):
        assert section in done.stdout, done.stdout
    assert "reconcile" in done.stdout  # the peers' sessions reached the node
