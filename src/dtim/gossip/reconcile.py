"""Range-based set reconciliation (RBSR), in the manner of Negentropy.

Both sides hold sorted sets of item keys (:mod:`dtim.gossip.ranges`). The
initiator sends the fingerprint of its whole set; each side answers every
range it receives:

* equal fingerprints: nothing more to say (skip);
* the receiver holds exactly one item more: the difference of the two id
  sums *is* that item's id (checked on ``fingerprint_size`` bytes), so the
  receiver pushes it at once, without splitting;
* the receiver holds exactly one item fewer: it answers with its own
  fingerprint so the other side can do the same;
* otherwise the receiver splits the range at its own items into about
  ``expansion * |count difference|`` sub-ranges (``min_branches`` at least)
  and sends their fingerprints, or, when it holds at most ``leaf_size``
  items there, lists them as salted short hashes; the side receiving such a
  list pushes what the list lacks and asks (``NEED``) for what it lacks.

Each side learns only what it must push (:attr:`Step.have`); what it lacks
arrives pushed by the peer. No per-peer cursor is kept, so a brand-new peer
converges the same way. Every message fits in :data:`~dtim.gossip.protocol.MAX_FRAME`:
when an answer would not, the rest of the key space is folded into one
fingerprint and settled in the following messages.

The id sums are not collision resistant against someone who can plant
crafted items at both ends (see ``docs/gossip.md``); the short hashes in id
lists are salted per session, so a collision there only delays an item to
a later session.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from dtim.errors import ProtocolError
from dtim.gossip.protocol import (
    MAX_FRAME,
    Header,
    Message,
    Mode,
    Range,
    decode_message,
    encode_message,
)
from dtim.gossip.ranges import MAX_BOUND, MIN_BOUND, ItemSource, Key, Summary, id_value, separator
from dtim.gossip.report import ItemId

_BOUND_COST = 12
"""Upper estimate of an encoded bound's size without its prefix."""


@dataclass(frozen=True, slots=True)
class Params:
    """Tuning of one side of a session (sizes travel in the initiator's header)."""

    fingerprint_size: int = 8
    hash_size: int = 4
    leaf_size: int = 8
    min_branches: int = 8
    top_branches: int = 128
    max_branches: int = 512
    expansion: float = 2.0
    decode_limit: int = 1 << 17
    frame_limit: int = MAX_FRAME

    def __post_init__(self) -> None:
        if self.leaf_size < 1 or self.min_branches < 2 or self.max_branches < self.min_branches:
            raise ValueError("need leaf_size >= 1 and 2 <= min_branches <= max_branches")
        if not 1024 <= self.frame_limit <= MAX_FRAME:
            raise ValueError(f"frame_limit must be 1024-{MAX_FRAME}")


@dataclass(frozen=True, slots=True)
class Step:
    """What one side does after reading a message.

    Attributes:
        reply: the message to send back, or None when this side has nothing
            more to ask (the session is over once a side answers None).
        have: ids of items to push to the peer now (the peer lacks them).
        requested: how many items this reply asks the peer to push.
    """

    reply: bytes | None
    have: tuple[ItemId, ...] = ()
    requested: int = 0


@dataclass
class _Output:
    limit: int
    ranges: list[Range] = field(default_factory=list)
    pending_skip: Key | None = None
    size: int = 2
    have: list[ItemId] = field(default_factory=list)
    requested: int = 0

    def skip(self, upper: Key) -> None:
        self.pending_skip = upper

    def room(self, fingerprint_size: int) -> int:
        reserve = 2 * _BOUND_COST + 2 * fingerprint_size + 12
        return self.limit - reserve - self.size

    def fits(self, group: list[Range], fingerprint_size: int, hash_size: int) -> bool:
        # The first group always goes in, so every message makes progress.
        cost = sum(_cost(r, fingerprint_size, hash_size) for r in group)
        return not self.ranges or cost <= self.room(fingerprint_size)

    def add(self, group: list[Range], fingerprint_size: int, hash_size: int) -> None:
        if self.pending_skip is not None:
            self.ranges.append(Range(self.pending_skip, Mode.SKIP))
            self.size += _BOUND_COST
            self.pending_skip = None
        self.ranges.extend(group)
        self.size += sum(_cost(r, fingerprint_size, hash_size) for r in group)


def _cost(item: Range, fingerprint_size: int, hash_size: int) -> int:
    return _BOUND_COST + len(item.upper[1]) + 10 + fingerprint_size + len(item.hashes) * hash_size


class Session:
    """One side of one reconciliation session over an :class:`ItemSource`.

    The source must not change while the session runs in a way the peer
    could notice mid-range; items added meanwhile are simply reconciled in a
    later session.
    """

    def __init__(
        self, source: ItemSource, *, params: Params | None = None, salt: bytes | None = None
    ) -> None:
        self._source = source
        self._params = params or Params()
        self._salt = salt
        self._header: Header | None = None
        self._pushed: set[bytes] = set()
        self.done = False

    @property
    def header(self) -> Header | None:
        """The session parameters, once known."""
        return self._header

    def initiate(self) -> bytes:
        """The initiator's first message: its whole set as one fingerprint or id list."""
        if self._header is not None:
            raise ProtocolError("session already started")
        self._header = Header(
            self._salt if self._salt is not None else secrets.token_bytes(16),
            self._params.fingerprint_size,
            self._params.hash_size,
        )
        mine = self._source.summary(MIN_BOUND, MAX_BOUND)
        if mine.count <= self._params.leaf_size:
            first = Range(MAX_BOUND, Mode.IDLIST, hashes=self._hashes(MIN_BOUND, MAX_BOUND))
        else:
            first = Range(MAX_BOUND, Mode.FINGERPRINT, mine.count, mine.total)
        return encode_message(Message((first,), self._header), self._header)

    def reconcile(self, message: bytes) -> Step:
        """Answer a message from the peer.

        Raises:
            ProtocolError: the message is malformed or breaks the session's rules.
        """
        if self.done:
            raise ProtocolError("message after the end of the session")
        decoded = decode_message(message, self._header)
        if decoded.header is not None:
            if self._header is not None:
                raise ProtocolError("session header repeated")
            self._header = decoded.header
        header = decoded.header or self._header
        assert header is not None  # nosec B101  # decode_message refuses a first message without one
        out = _Output(self._params.frame_limit)
        lower = MIN_BOUND
        for received in decoded.ranges:
            group = self._answer(lower, received, header, out)
            if group:
                if not out.fits(group, header.fingerprint_size, header.hash_size):
                    rest = self._source.summary(lower, MAX_BOUND)
                    out.add([Range(MAX_BOUND, Mode.FINGERPRINT, rest.count, rest.total)], 0, 0)
                    break
                out.add(group, header.fingerprint_size, header.hash_size)
            else:
                out.skip(received.upper)
            lower = received.upper
        have = tuple(ItemId(i) for i in out.have if i not in self._pushed)
        self._pushed.update(have)
        if not out.ranges:
            self.done = True
            return Step(None, have, out.requested)
        reply = encode_message(Message(tuple(out.ranges)), header)
        return Step(reply, have, out.requested)

    # -- answering one range ------------------------------------------------------

    def _answer(self, lo: Key, received: Range, header: Header, out: _Output) -> list[Range]:
        hi = received.upper
        if received.mode is Mode.SKIP:
            return []
        if received.mode is Mode.NEED:
            wanted = set(received.hashes)
            out.have.extend(i for short, i in self._short_ids(lo, hi, header) if short in wanted)
            return []
        if received.mode is Mode.IDLIST:
            return self._against_list(lo, hi, received.hashes, header, out)
        modulus = 1 << (8 * header.fingerprint_size)
        mine = self._source.summary(lo, hi)
        if mine.count == received.count and mine.total % modulus == received.total:
            return []
        if mine.count == received.count + 1:
            found = self._decode(
                lo, hi, (mine.total - received.total) % modulus, modulus, mine.count
            )
            if found is not None:
                out.have.append(found)
                return []
        if mine.count + 1 == received.count:
            return [Range(hi, Mode.FINGERPRINT, mine.count, mine.total)]
        room = out.room(header.fingerprint_size)
        return self._split(
            lo, hi, mine, abs(mine.count - received.count), room, header.fingerprint_size
        )

    def _decode(self, lo: Key, hi: Key, target: int, modulus: int, count: int) -> ItemId | None:
        if count > self._params.decode_limit:
            return None
        found = [i for _, i in self._source.keys(lo, hi) if id_value(i) % modulus == target]
        return ItemId(found[0]) if len(found) == 1 else None

    def _against_list(
        self, lo: Key, hi: Key, theirs: tuple[bytes, ...], header: Header, out: _Output
    ) -> list[Range]:
        if not theirs:
            out.have.extend(ItemId(i) for _, i in self._source.keys(lo, hi))
            return []
        listed = set(theirs)
        mine: set[bytes] = set()
        for short, item in self._short_ids(lo, hi, header):
            mine.add(short)
            if short not in listed:
                out.have.append(item)
        missing = tuple(dict.fromkeys(short for short in theirs if short not in mine))
        if not missing:
            return []
        out.requested += len(missing)
        return [Range(hi, Mode.NEED, hashes=missing)]

    def _split(
        self, lo: Key, hi: Key, mine: Summary, delta: int, room: int, fingerprint_size: int
    ) -> list[Range]:
        params = self._params
        if mine.count <= params.leaf_size:
            return [Range(hi, Mode.IDLIST, hashes=self._hashes(lo, hi))]
        # At the top the count difference says little when both sides gained
        # items, so the first split is wide; below it follows the difference.
        floor = params.top_branches if (lo, hi) == (MIN_BOUND, MAX_BOUND) else params.min_branches
        wanted = max(floor, math.ceil(params.expansion * delta))
        fitting = room // (_BOUND_COST + 8 + 10 + fingerprint_size)
        branches = max(2, min(wanted, params.max_branches, mine.count, fitting))
        group: list[Range] = []
        start = lo
        for index in range(1, branches):
            position = mine.count * index // branches
            before, after = self._source.keys(lo, hi, offset=position - 1, limit=2)
            cut = separator(before, after)
            part = self._source.summary(start, cut)
            group.append(Range(cut, Mode.FINGERPRINT, part.count, part.total))
            start = cut
        part = self._source.summary(start, hi)
        group.append(Range(hi, Mode.FINGERPRINT, part.count, part.total))
        return group

    # -- short hashes -------------------------------------------------------------

    def _short_ids(self, lo: Key, hi: Key, header: Header) -> Iterator[tuple[bytes, ItemId]]:
        for _, item in self._source.keys(lo, hi):
            yield hashlib.sha256(header.salt + item).digest()[: header.hash_size], ItemId(item)

    def _hashes(self, lo: Key, hi: Key) -> tuple[bytes, ...]:
        assert self._header is not None  # nosec B101  # set before any range is answered
        return tuple(short for short, _ in self._short_ids(lo, hi, self._header))


@dataclass(frozen=True, slots=True)
class Transcript:
    """A whole session run in one process (tests, simulation, benchmarks).

    Attributes:
        messages: sizes of the reconciliation messages, alternating from the initiator.
        to_responder: ids the initiator pushed.
        to_initiator: ids the responder pushed.
        pushes: for each message, the ids that travelled with it.
    """

    messages: tuple[int, ...]
    to_responder: frozenset[ItemId]
    to_initiator: frozenset[ItemId]
    pushes: tuple[tuple[ItemId, ...], ...]

    @property
    def round_trips(self) -> int:
        """Request/response pairs needed, counting a final push-only message."""
        return (len(self.pushes) + 1) // 2

    @property
    def bytes(self) -> int:
        """Reconciliation bytes both ways (the pushed items themselves excluded)."""
        return sum(self.messages)


def converse(
    initiator: ItemSource,
    responder: ItemSource,
    *,
    params: Params | None = None,
    responder_params: Params | None = None,
    salt: bytes | None = None,
    max_messages: int = 64,
) -> Transcript:
    """Run a complete session between two local sources and record it.

    Raises:
        ProtocolError: the session did not end within ``max_messages``.
    """
    first = Session(initiator, params=params, salt=salt)
    second = Session(responder, params=responder_params or params)
    message: bytes | None = first.initiate()
    sizes: list[int] = []
    pushes: list[tuple[ItemId, ...]] = [()]
    pushed: tuple[set[ItemId], set[ItemId]] = (set(), set())
    sides = (second, first)
    turn = 0
    while message is not None:
        if len(sizes) >= max_messages:
            raise ProtocolError(f"session did not finish within {max_messages} messages")
        sizes.append(len(message))
        step = sides[turn % 2].reconcile(message)
        pushed[turn % 2].update(step.have)
        if step.reply is not None or step.have:
            pushes.append(step.have)
        message = step.reply
        turn += 1
    return Transcript(tuple(sizes), frozenset(pushed[1]), frozenset(pushed[0]), tuple(pushes))
