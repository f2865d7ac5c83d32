"""Reconciliation sessions for the simulation: real ones, sampled and replayed.

Simulated nodes share a background set of reports and differ only in the
few tracked reports they have fluffed. A session's outcome depends only on
the two sets, so the book runs a *real* :func:`~dtim.gossip.reconcile.converse`
the first ``samples`` times a pair of sets meets (each with a fresh salt)
and afterwards replays one of those transcripts at random: the pushes are
exactly the real ones, the byte counts are real measured ones. Sessions
between equal sets replay the measured idle session.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from dtim.gossip.ranges import Key, SortedItems
from dtim.gossip.reconcile import Params, Transcript, converse
from dtim.gossip.report import ItemId


def random_keys(
    count: int, rng: random.Random, *, start: int = 1_767_225_600, hours: int = 720
) -> list[Key]:
    """``count`` random item keys spread over ``hours`` hourly time buckets."""
    return [(start + 3600 * rng.randrange(hours), rng.randbytes(32)) for _ in range(count)]


@dataclass
class SessionStats:
    """What the book measured and replayed."""

    real: int = 0
    replayed: int = 0
    idle: int = 0
    bytes: int = 0
    busy_bytes: int = 0
    round_trips: int = 0

    @property
    def sessions(self) -> int:
        """All sessions accounted for."""
        return self.real + self.replayed + self.idle


class SessionBook:
    """Runs or replays sessions between sets ``background + extra``.

    Args:
        background: keys every node holds.
        rng: randomness for salts and sampling.
        samples: real sessions per distinct pair of sets before replaying.
        params: reconciliation tuning.
    """

    def __init__(
        self,
        background: Iterable[Key],
        rng: random.Random,
        samples: int = 8,
        params: Params | None = None,
    ) -> None:
        self._background = list(background)
        self._rng = rng
        self._samples = samples
        self._params = params
        self._sources: dict[frozenset[Key], SortedItems] = {}
        self._book: dict[tuple[frozenset[Key], frozenset[Key]], list[Transcript]] = {}
        self.stats = SessionStats()
        self.idle = self._run(frozenset(), frozenset())

    def _source(self, extra: frozenset[Key]) -> SortedItems:
        source = self._sources.get(extra)
        if source is None:
            if len(self._sources) > 4096:
                self._sources.clear()
            source = self._sources[extra] = SortedItems([*self._background, *extra])
        return source

    def _run(self, left: frozenset[Key], right: frozenset[Key]) -> Transcript:
        salt = self._rng.randbytes(16)
        return converse(self._source(left), self._source(right), params=self._params, salt=salt)

    def session(self, left: frozenset[Key], right: frozenset[Key]) -> Transcript:
        """The transcript of a session between ``background + left`` (initiator) and ``+ right``."""
        if left == right:
            transcript = self.idle
            self.stats.idle += 1
        else:
            runs = self._book.setdefault((left, right), [])
            if len(runs) < self._samples:
                transcript = self._run(left, right)
                runs.append(transcript)
                self.stats.real += 1
            else:
                transcript = self._rng.choice(runs)
                self.stats.replayed += 1
            self.stats.busy_bytes += transcript.bytes
        self.stats.bytes += transcript.bytes
        self.stats.round_trips += transcript.round_trips
        return transcript


def delivered(
    transcript: Transcript, loss: float, rng: random.Random
) -> tuple[set[ItemId], set[ItemId], bool]:
    """Replay a transcript over a lossy link.

    Every message is lost with probability ``loss``; a lost message ends the
    session (the sender times out), and what travelled before it stays
    delivered.

    Returns:
        ``(to_responder, to_initiator, completed)``.
    """
    to_responder: set[ItemId] = set()
    to_initiator: set[ItemId] = set()
    for index, pushed in enumerate(transcript.pushes):
        if loss and rng.random() < loss:
            return to_responder, to_initiator, False
        (to_responder if index % 2 == 0 else to_initiator).update(pushed)
    return to_responder, to_initiator, True
