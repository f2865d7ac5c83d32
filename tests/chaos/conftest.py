"""Fixtures of the fault tests: real node processes, every one killed when the test ends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosNode, chaos_homes

HARD_STOP = 150.0
"""A test still running after this many seconds has all its nodes killed."""


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[Callable[[Sequence[str]], list[ChaosNode]]]:
    """``homes(["a", "b"])``: initialised homes whose processes are killed at the end."""
    made: list[ChaosNode] = []
    done = threading.Event()

    def kill_all() -> None:
        for node in made:
            node.kill()

    def watch() -> None:
        if not done.wait(HARD_STOP):
            kill_all()

    threading.Thread(target=watch, name="chaos-hard-stop", daemon=True).start()

    def make(names: Sequence[str]) -> list[ChaosNode]:
        nodes = chaos_homes(tmp_path, names)
        made.extend(nodes)
        return nodes

    try:
        yield make
    finally:
        done.set()
        for node in made:
            node.stop()
