"""Fixtures of the mesh tests: meshes of real ``dtim node run`` processes, always killed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from tests.mesh.cluster import (
    FORMATION,
    HARD_STOP,
    Mesh,
    MeshNode,
    approve_all,
    init_homes,
    stop_all,
)


@pytest.fixture(scope="module")
def mesh_of(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Mesh]]:
    """Start meshes: ``mesh_of(count, groups={(node, peer): [group]})``; all killed at the end.

    The mesh is returned once every node has pinned every other (the mesh is
    formed). One more node, ``x``, runs too: it approved ``n0``, which never
    approves it.
    """
    started: list[MeshNode] = []

    def make(count: int, groups: dict[tuple[str, str], list[str]] | None = None) -> Mesh:
        root = tmp_path_factory.mktemp("mesh")
        *nodes, spare = init_homes(root, [*(f"n{i}" for i in range(count)), "x"])
        approve_all(nodes, groups or {})
        # The outsider approves n0, which never approves it.
        spare.peers = [{"endpoint": nodes[0].url, "public_key": nodes[0].public_key}]
        mesh = Mesh(root, nodes, started, outsider=spare)
        for node in (*nodes, spare):
            node.start()
            started.append(node)
        mesh.wait_for(mesh.formed, "every node pinned every other", FORMATION)
        return mesh

    try:
        yield make
    finally:
        stop_all(started)


@pytest.fixture(autouse=True)
def hard_stop(mesh: Mesh) -> Iterator[None]:
    """Kill every node of the mesh if the test runs past :data:`HARD_STOP` seconds.

    Every test module here defines a ``mesh`` fixture; the clock starts once it is formed.
    """
    done = threading.Event()

    def watch() -> None:
        if not done.wait(HARD_STOP):
            for node in list(mesh.processes):
                node.kill()

    threading.Thread(target=watch, name="mesh-hard-stop", daemon=True).start()
    try:
        yield
    finally:
        done.set()
