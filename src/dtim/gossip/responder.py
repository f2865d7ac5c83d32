"""The responding side of reconciliation sessions, as the peer API serves them.

A peer opens a session by sending its first RBSR message with a fresh
session id. The responder takes a snapshot of that peer's view (what the
privacy filter lets it receive), answers each message, and collects the
items the peer lacks; the peer fetches them afterwards with ``pull``, in
frames of at most 64 KiB. Sessions are kept in memory for a short while and
bounded per peer and in total, so a peer cannot exhaust the node.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field

from dtim.errors import PeerRejected, ProtocolError
from dtim.gossip.protocol import MAX_FRAME
from dtim.gossip.reconcile import Params, Session
from dtim.gossip.report import Item, ItemId, encode
from dtim.gossip.views import ItemIndex, PeerView
from dtim.model import Clock, Peer

SESSION_ID = re.compile(r"^[0-9a-f]{16,64}$")
_OPEN = b'{"items":['
_FRAME_CLOSE = b'],"more":%s,"v":1}'
_FRAME_SLACK = 64


@dataclass(slots=True)
class _Open:
    view: PeerView
    session: Session
    touched: float
    pending: deque[ItemId] = field(default_factory=deque)
    messages: int = 0


@dataclass(frozen=True, slots=True)
class Served:
    """One pull frame and the items in it (for the audit log)."""

    frame: bytes
    items: tuple[Item, ...]
    more: bool


class Responder:
    """Open reconciliation sessions of this node, answering its peers.

    Args:
        index: the node's items (views are taken from it).
        clock: time (views drop expired items).
        params: reconciliation tuning of this side.
        ttl: seconds a session may stay idle before it is dropped.
        per_peer: open sessions allowed per peer.
        total: open sessions allowed in all.
        max_messages: messages allowed in one session.
    """

    def __init__(
        self,
        index: ItemIndex,
        *,
        clock: Clock,
        params: Params | None = None,
        ttl: float = 120.0,
        per_peer: int = 4,
        total: int = 256,
        max_messages: int = 64,
    ) -> None:
        self._index = index
        self._clock = clock
        self._params = params or Params()
        self._ttl = ttl
        self._per_peer = per_peer
        self._total = total
        self._max_messages = max_messages
        self._sessions: dict[tuple[str, str], _Open] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        limit = time.monotonic() - self._ttl
        for key in [k for k, s in self._sessions.items() if s.touched < limit]:
            del self._sessions[key]

    def reconcile(self, peer: Peer, session_id: str, message: bytes) -> bytes:
        """Answer one message of a session (opening it on its first message).

        Returns:
            The reply; empty when this side has nothing more to say.

        Raises:
            ProtocolError: bad session id, or a message that breaks the protocol.
            PeerRejected: too many open sessions.
        """
        if not SESSION_ID.match(session_id):
            raise ProtocolError("session id must be 16-64 lowercase hex digits")
        self._expire()
        key = (peer.id, session_id)
        found = self._sessions.get(key)
        if found is None:
            mine = sum(1 for owner, _ in self._sessions if owner == peer.id)
            if mine >= self._per_peer or len(self._sessions) >= self._total:
                raise PeerRejected("too many open reconciliation sessions; try again later")
            view = self._index.view_for(peer.id, peer.groups, self._clock.now())
            found = _Open(view, Session(view.keys, params=self._params), time.monotonic())
            self._sessions[key] = found
        found.messages += 1
        found.touched = time.monotonic()
        if found.messages > self._max_messages:
            del self._sessions[key]
            raise ProtocolError(f"session exceeded {self._max_messages} messages")
        try:
            step = found.session.reconcile(message)
        except ProtocolError:
            del self._sessions[key]
            raise
        found.pending.extend(step.have)
        return step.reply or b""

    def pull(self, peer_id: str, session_id: str, limit: int = MAX_FRAME) -> Served:
        """The next frame of items the peer lacks; the session ends with the last frame.

        Raises:
            ProtocolError: bad session id.
        """
        if not SESSION_ID.match(session_id):
            raise ProtocolError("session id must be 16-64 lowercase hex digits")
        key = (peer_id, session_id)
        found = self._sessions.get(key)
        if found is None:
            return Served(_OPEN + _FRAME_CLOSE % b"false", (), False)
        found.touched = time.monotonic()
        chunks: list[bytes] = []
        items: list[Item] = []
        size = len(_OPEN) + len(_FRAME_CLOSE) + _FRAME_SLACK
        while found.pending:
            item = found.view.items.get(found.pending[0])
            if item is None:
                found.pending.popleft()
                continue
            encoded = encode(item)
            if chunks and size + len(encoded) + 1 > limit:
                break
            found.pending.popleft()
            chunks.append(encoded)
            items.append(item)
            size += len(encoded) + 1
        more = bool(found.pending)
        if not more:
            del self._sessions[key]
        frame = _OPEN + b",".join(chunks) + _FRAME_CLOSE % (b"true" if more else b"false")
        return Served(frame, tuple(items), more)
