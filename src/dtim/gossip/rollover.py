"""Accepting an approved peer's identity key rollover, and refusing everyone else's.

A peer that rotated its identity key presents its rollover statement (new
key, time; signed by the old key and by the new one — see
:mod:`dtim.crypto.rotation`) on ``POST /api/v1/node/rollover``, in a request
signed with its current key over its own mutual-TLS connection. The node
checks the statement against the key it pinned *for that very peer*: a
statement for a key the sender does not own — another peer's, even a genuine
one relayed — is refused and counted against the sender. Accepted, the new
key is pinned in the peer's record (same peer id, same approval), and the
old key stops verifying at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from dtim.crypto.identity import fingerprint_of, node_id_of, public_key_bytes
from dtim.crypto.rotation import RolloverStatement, verify_rollover
from dtim.errors import SignatureError
from dtim.gossip.directory import PeerDirectory
from dtim.gossip.inbox import AuditSink, record
from dtim.model import Peer, PeerStatus
from dtim.model.indicator import JsonValue
from dtim.store import Store

ROLLOVER_PATH = "/api/v1/node/rollover"


async def accept_rollover(
    store: Store,
    directory: PeerDirectory,
    sender: Peer,
    statement: Mapping[str, JsonValue],
    *,
    now: datetime,
    audit: AuditSink | None = None,
) -> Peer:
    """Pin the new key of ``sender`` when its statement hands over from the key pinned for it.

    Args:
        store: the node's store (the peer record is updated).
        directory: the running node's peers (refreshed, so the new key verifies at once).
        sender: the approved peer that presented the statement.
        statement: the rollover statement as sent.
        now: time of acceptance (audit).
        audit: the audit log.

    Returns:
        The peer record with its new key.

    Raises:
        SignatureError: the statement is malformed, is not from the key pinned for
            ``sender``, a signature fails, or the new key is another peer's.
    """
    try:
        checked, raw = _check(directory, sender, statement)
    except SignatureError as exc:
        record(audit, {"event": "rollover_refused", "peer": sender.id, "reason": exc.reason})
        raise
    updated = replace(sender, public_key=checked.new_key, fingerprint=fingerprint_of(raw))
    await store.save_peer(updated)
    record(
        audit,
        {
            "event": "peer_key_rolled_over",
            "peer": sender.id,
            "new_key_id": node_id_of(raw),
            "at": now.isoformat(),
        },
    )
    await directory.refresh(force=True)
    return updated


def _check(
    directory: PeerDirectory, sender: Peer, statement: Mapping[str, JsonValue]
) -> tuple[RolloverStatement, bytes]:
    if sender.status is not PeerStatus.APPROVED or not sender.public_key:
        raise SignatureError("rollover refused: only an approved peer may roll its key over")
    checked = verify_rollover(statement, sender.public_key)
    raw = public_key_bytes(checked.new_key)
    owner = directory.get(node_id_of(raw))
    if owner is not None and owner.id != sender.id:
        raise SignatureError("rollover refused: the new key belongs to another peer")
    return checked, raw
