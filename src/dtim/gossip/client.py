"""The initiating side of one push-pull reconciliation session with one peer.

1. Take this peer's view (only what the privacy filter lets it receive).
2. Run range-based set reconciliation over the transport until one side has
   nothing more to say; each step tells us which of our items the peer lacks.
3. Push those items to the peer (frames of at most 64 KiB, signed).
4. Pull the items the peer found we lack, frame by frame, through the inbox.

Nothing is remembered per peer between sessions: a brand-new peer and one
that was offline for a week converge the same way.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from dtim.errors import ProtocolError
from dtim.gossip.inbox import Inbox
from dtim.gossip.reconcile import Params, Session
from dtim.gossip.report import Item, ItemId
from dtim.gossip.transport import GossipTransport
from dtim.gossip.views import PeerView
from dtim.model import Peer

MAX_MESSAGES = 32
"""Reconciliation messages allowed in one session (both directions)."""
MAX_PULL_FRAMES = 64
"""Frames pulled in one session; the rest come in a later session."""


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """What one session did.

    Attributes:
        peer_id: the peer.
        messages: reconciliation messages sent and received.
        reconcile_bytes: their total size.
        pushed: items we sent.
        pushed_indicators: the indicator ids of those items (for the audit log).
        pulled: items the peer sent us.
        new: how many of them were new to us.
        seen: ids of every well-formed item the peer sent us.
    """

    peer_id: str
    messages: int
    reconcile_bytes: int
    pushed: int
    pushed_indicators: tuple[str, ...]
    pulled: int
    new: int
    seen: tuple[ItemId, ...]


async def run_session(
    transport: GossipTransport,
    peer: Peer,
    view: PeerView,
    inbox: Inbox,
    *,
    params: Params | None = None,
) -> SessionOutcome:
    """Reconcile with ``peer``: push what it lacks, pull what we lack.

    Raises:
        PeerUnreachable: the peer did not answer in time.
        PeerRejected: the peer refused us (TLS, signature, approval, rate limit).
        ProtocolError: the peer broke the protocol.
        StoreError: storing what it sent failed.
    """
    session_id = secrets.token_hex(16)
    session = Session(view.keys, params=params)
    message: bytes | None = session.initiate()
    to_push: list[ItemId] = []
    messages = 0
    size = 0
    while message is not None:
        if messages >= MAX_MESSAGES:
            raise ProtocolError(f"session with {peer.id[:16]} did not finish in {MAX_MESSAGES}")
        reply = await transport.reconcile(peer, session_id, message)
        messages += 2
        size += len(message) + len(reply)
        if not reply:
            break
        step = session.reconcile(reply)
        to_push.extend(step.have)
        message = step.reply
    items: list[Item] = [view.items[key] for key in dict.fromkeys(to_push) if key in view.items]
    if items:
        await transport.push(peer, items)
    pulled = 0
    new = 0
    seen: list[ItemId] = []
    for _ in range(MAX_PULL_FRAMES):
        frame = await transport.pull(peer, session_id)
        if frame.items:
            receipt = await inbox.accept(peer.id, frame.items, via="pull")
            pulled += len(frame.items)
            new += receipt.received
            seen.extend(receipt.seen)
        if not frame.more:
            break
    return SessionOutcome(
        peer_id=peer.id,
        messages=messages,
        reconcile_bytes=size,
        pushed=len(items),
        pushed_indicators=tuple(item.indicator for item in items),
        pulled=pulled,
        new=new,
        seen=tuple(seen),
    )
