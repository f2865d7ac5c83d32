"""Topologies for the simulation: the complete graph or a random D-regular graph."""

from __future__ import annotations

import random

from dtim.errors import ValidationError


class Graph:
    """Who may talk to whom.

    Args:
        nodes: number of nodes, numbered ``0 .. nodes-1``.
        degree: None for the complete graph; otherwise every node gets about
            ``degree`` neighbours (the union of ``degree // 2`` random
            Hamiltonian cycles, plus a random matching when ``degree`` is odd).
        rng: randomness for the wiring.
    """

    def __init__(self, nodes: int, degree: int | None, rng: random.Random) -> None:
        if nodes < 2:
            raise ValidationError("nodes", f"need at least 2 nodes, got {nodes}")
        if degree is not None and not 2 <= degree < nodes:
            raise ValidationError("degree", f"must be between 2 and nodes - 1, got {degree}")
        self.nodes = nodes
        self.degree = degree
        self._adjacent: list[list[int]] | None = None
        if degree is not None:
            sets: list[set[int]] = [set() for _ in range(nodes)]
            for _ in range(degree // 2):
                order = list(range(nodes))
                rng.shuffle(order)
                for a, b in zip(order, order[1:] + order[:1], strict=True):
                    if a != b:
                        sets[a].add(b)
                        sets[b].add(a)
            if degree % 2:
                order = list(range(nodes))
                rng.shuffle(order)
                for a, b in zip(order[::2], order[1::2], strict=False):
                    sets[a].add(b)
                    sets[b].add(a)
            self._adjacent = [sorted(s) for s in sets]

    def neighbours(self, node: int) -> list[int]:
        """Every neighbour of ``node`` (for the complete graph, every other node)."""
        if self._adjacent is None:
            return [other for other in range(self.nodes) if other != node]
        return self._adjacent[node]

    def pick(self, node: int, count: int, rng: random.Random) -> list[int]:
        """``count`` distinct neighbours chosen uniformly at random (fewer if it has fewer)."""
        if self._adjacent is not None:
            adjacent = self._adjacent[node]
            return rng.sample(adjacent, min(count, len(adjacent)))
        chosen: set[int] = set()
        wanted = min(count, self.nodes - 1)
        while len(chosen) < wanted:
            other = rng.randrange(self.nodes)
            if other != node:
                chosen.add(other)
        return list(chosen)
