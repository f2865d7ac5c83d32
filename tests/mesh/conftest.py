"""Fixtures of the mesh tests: meshes of real ``dtim node run`` processes, always killed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

from tests.mesh.cluster import (
    FORMATION,
    HARD_STOP,
    Mesh,
    MeshNode,
    approve_all,
    approve_links,
    init_homes,
    stop_all,
)


@pytest.fixture(scope="module")
def mesh_of(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Mesh]]:
    """Start meshes: ``mesh_of(count, groups={(node, peer): [group]})``; all killed at the end.

    The mesh is returned once every node has pinned every peer it approved (the
    mesh is formed). Every node approves every other, or with ``links=[(0, 1), ...]``
    only the linked pairs approve each other. One more node, ``x``, runs too
    (unless ``outsider=False``): it approved ``n0``, which never approves it.
    ``settings``: more ``DTIM__SECTION__KEY`` overrides for every node.
    """
    started: list[MeshNode] = []

    def make(
        count: int,
        groups: dict[tuple[str, str], list[str]] | None = None,
        *,
        links: Sequence[tuple[int, int]] | None = None,
        outsider: bool = True,
        settings: Mapping[str, str] | None = None,
    ) -> Mesh:
        root = tmp_path_factory.mktemp("mesh")
        names = [f"n{i}" for i in range(count)]
        homes = init_homes(root, [*names, "x"] if outsider else names)
        nodes, spare = homes[:count], (homes[count] if outsider else None)
        if links is None:
            approve_all(nodes, groups or {})
        else:
            approve_links(nodes, links)
        if spare is not None:
            # The outsider approves n0, which never approves it.
            spare.peers = [{"endpoint": nodes[0].url, "public_key": nodes[0].public_key}]
        mesh = Mesh(root, nodes, started, outsider=spare)
        for node in homes:
            node.settings.update(settings or {})
            node.start()
            started.append(node)
        mesh.wait_for(mesh.formed, "every node pinned the peers it approved", FORMATION)
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
