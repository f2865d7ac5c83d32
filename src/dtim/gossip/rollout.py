"""Key rotation in a running node, and delivering identity rollovers to its peers.

:class:`KeyMaintenance` checks the key ages on start and hourly against
``security.key_rotation_days`` and rotates what is due
(:mod:`dtim.crypto.rotation`): the TLS certificate (the peer listener and new
outgoing connections take it at once), the keyring (the running audit log
writes with the new key), the identity (a rollover statement signed by the
old key). It also notices, within :data:`POLL_SECONDS`, what ``dtim keys
rotate`` changed in the home of the running node.

After an identity rollover each peer that knew the old key is sent the
statement (``POST /api/v1/node/rollover``) in a request signed with the key
that peer knows, retried with exponential back-off until it answers. The
peer then pins the new key and refuses the old one, so from that answer on
the node signs for that peer with the new key, and keeps the old key for
peers still waiting (:class:`dtim.crypto.nodekeys.NodeKeys`). Who still
waits is kept in the store (state key :data:`STATE_KEY`), so a restart
carries on; a peer still unreachable :data:`RETRY_WINDOW` after the rollover
is given up on (its operator must add the node again), and a retired key no
peer needs is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from dtim.crypto.certs import NODE_CERT_FILE
from dtim.crypto.identity import IDENTITY_KEY_FILE, NodeIdentity, load_identity, node_id_of
from dtim.crypto.keyring import Keyring
from dtim.crypto.nodekeys import KeyOwner, NodeKeys
from dtim.crypto.rotation import (
    RolloverStatement,
    RotationKind,
    drop_retired,
    due_rotations,
    load_retired,
    load_rollovers,
    rotate_identity,
    rotate_tls,
)
from dtim.crypto.tls import PeerTrust
from dtim.errors import CryptoError, GossipError, PeerRejected, StoreError
from dtim.gossip.directory import Backoff, PeerDirectory
from dtim.gossip.inbox import AuditSink, record
from dtim.gossip.nodeinfo import node_document
from dtim.gossip.rollover import ROLLOVER_PATH
from dtim.gossip.transport import HttpTransport
from dtim.model import Clock, PeerStatus
from dtim.model.indicator import JsonValue
from dtim.store import Store

log = logging.getLogger("dtim.keys")

STATE_KEY = "identity.rollout"
"""Store state: the node id last run with, and peer id -> the older key id it still knows."""
POLL_SECONDS = 1.0
"""How often the key files are looked at (a ``stat`` each)."""
DUE_CHECK_SECONDS = 3600.0
"""How often key ages are checked against ``security.key_rotation_days``."""
RETRY_BASE_SECONDS = 2.0
RETRY_CAP_SECONDS = 3600.0
"""Back-off of an unreachable peer: 2 s doubling up to an hour (with jitter)."""
RETRY_WINDOW = timedelta(days=14)
"""A rollover not delivered to a peer this long after it was made is given up on."""
_REVOKED = "key revoked"
"""The receiver's reason once it pinned a newer key (the statement already arrived)."""


@dataclass(frozen=True, slots=True)
class RolloutState:
    """What the store keeps between runs: our node id, and who still knows an older key."""

    key: str
    peers: Mapping[str, str]

    def to_json(self) -> dict[str, JsonValue]:
        """The stored form."""
        return {"key": self.key, "peers": dict(self.peers)}

    @classmethod
    def from_json(cls, value: JsonValue) -> RolloutState | None:
        """Read the stored form; None when absent or not understood."""
        if not isinstance(value, dict) or not isinstance(value.get("key"), str):
            return None
        peers = value.get("peers")
        if not isinstance(peers, dict):
            return None
        return cls(str(value["key"]), {str(k): v for k, v in peers.items() if isinstance(v, str)})


class Addressee(Protocol):
    """Something that accepts messages for this node's id or one of its older ids."""

    node_id: str
    aliases: frozenset[str]


def links(chain: Sequence[RolloverStatement], start: str, end: str) -> list[RolloverStatement]:
    """The statements leading from key id ``start`` to ``end``, in order; [] when none do."""
    by_old = {s.old_node_id: s for s in chain}
    path: list[RolloverStatement] = []
    at = start
    while at != end:
        step = by_old.get(at)
        if step is None or len(path) > len(chain):
            return []
        path.append(step)
        at = step.new_node_id
    return path


def chain_keys(chain: Sequence[RolloverStatement]) -> dict[str, str]:
    """Every older node id of ours -> its public key, from the rollover statements."""
    return {s.old_node_id: s.old_key for s in chain}


def key_owner(directory: PeerDirectory) -> KeyOwner:
    """Resolve a peer's signing key id to its peer id (they differ after its own rollover)."""
    cache: dict[str, str] = {}
    seen: list[object] = [None]

    def owner(key_id: str) -> str | None:
        snapshot = directory.snapshot
        if seen[0] is not snapshot:
            cache.clear()
            for peer in snapshot.peers.values():
                try:
                    cache[node_id_of(base64.b64decode(peer.public_key, validate=True))] = peer.id
                except (binascii.Error, ValueError):
                    continue  # an unusable stored key names no one
            seen[0] = snapshot
        return cache.get(key_id)

    return owner


def rolled_over_from(peer_id: str, public_key: str) -> bool:
    """True when ``public_key`` is the key the peer record ``peer_id`` was made with.

    A peer id is the node id of the key first pinned, so a record holding
    another key under that id got it by an accepted rollover: a configured
    peer (``network.default_peers``) still naming the first key is that peer.
    """
    try:
        return node_id_of(base64.b64decode(public_key, validate=True)) == peer_id
    except (binascii.Error, ValueError):
        return False


def current_document(
    keys: NodeKeys, *, endpoint: str, ca_pem: str, software: str
) -> Callable[[], dict[str, JsonValue]]:
    """The node document (``GET /api/v1/node``) of the current key, rebuilt after a rollover."""
    made: dict[str, dict[str, JsonValue]] = {}

    def document() -> dict[str, JsonValue]:
        identity = keys.current
        found = made.get(identity.node_id)
        if found is None:
            found = node_document(identity, endpoint=endpoint, ca_pem=ca_pem, software=software)
            made.clear()
            made[identity.node_id] = found
        return found

    return document


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return (found.st_mtime_ns, found.st_size, found.st_ino)


@dataclass
class KeyFiles:
    """Where a node's keys live."""

    keys_dir: Path
    certs_dir: Path


class KeyMaintenance:
    """Scheduled rotation, pickup of ``dtim keys rotate``, and rollover delivery.

    Args:
        files: the node's key and certificate directories.
        keys: the node's identities (shared with the signer and the transport).
        store: keeps :class:`RolloutState`.
        directory: the node's peers.
        transport: delivers statements; renewed after a TLS rotation.
        addressees: what checks that messages are for us (the request verifier, the
            inbox): their ids follow the identity and its rollover chain.
        listeners: the TLS of the node's listeners (the peer API's mTLS, and the admin API's
            when it serves HTTPS), reloaded after a TLS rotation.
        keyring: the running keyring (rotated in place, reloaded after ``dtim keys rotate``).
        audit: security events.
        clock: time of rotations and deliveries.
        rotation_days: ``security.key_rotation_days`` (0: no scheduled rotation).
    """

    def __init__(
        self,
        files: KeyFiles,
        *,
        keys: NodeKeys,
        store: Store,
        directory: PeerDirectory,
        transport: HttpTransport,
        addressees: Sequence[Addressee],
        listeners: Sequence[PeerTrust],
        keyring: Keyring,
        audit: AuditSink | None,
        clock: Clock,
        rotation_days: int,
    ) -> None:
        self.files = files
        self.keys = keys
        self._store = store
        self._directory = directory
        self._transport = transport
        self._addressees = tuple(addressees)
        self._listeners = tuple(listeners)
        self.keyring = keyring
        self._audit = audit
        self._clock = clock
        self._days = rotation_days
        self.backoff = Backoff(RETRY_BASE_SECONDS, RETRY_CAP_SECONDS)
        self._chain: list[RolloverStatement] = []
        self._stamps: dict[str, tuple[int, int, int] | None] = {}
        self._refused: str | None = None
        self._next_due = 0.0
        self._leading = False
        self._adopting = asyncio.Lock()

    async def prepare(self) -> None:
        """On start: carry on from the stored state (:meth:`run` then rotates what is due).

        Raises:
            CryptoError: the key files are unusable.
            StoreError: the state cannot be read or written.
        """
        keys_dir = self.files.keys_dir
        state = RolloutState.from_json(await self._store.get_state(STATE_KEY))
        current = self.keys.current
        self._chain = load_rollovers(keys_dir)
        known = dict(state.peers) if state is not None else {}
        if state is not None and state.key != current.node_id:
            if links(self._chain, state.key, current.node_id):
                known = self._waiting(known, state.key)
                self._started(state.key, current.node_id, known)
            else:
                self._unchained(state.key, current.node_id)
        await self._install(current, known)
        self._remember_stamps()

    async def follow(self) -> None:
        """Forever, in every process of the node: apply key file changes, and (while another
        process leads) the leader's record of who still waits for a rollover."""
        while True:
            try:
                await self.pick_up_changes()
                if not self._leading:
                    await self.reload_waiting()
            except (CryptoError, StoreError) as exc:
                log.warning("key files: %s", exc)
            await asyncio.sleep(POLL_SECONDS)

    async def run(self) -> None:
        """Forever, in the leading process: rotate when due (first at once), deliver rollovers."""
        self._leading = True
        try:
            while True:
                try:
                    await self.tick()
                except (CryptoError, StoreError) as exc:
                    log.warning("key maintenance: %s", exc)
                await asyncio.sleep(POLL_SECONDS)
        finally:
            self._leading = False

    async def tick(self) -> None:
        """One pass of the leader: the hourly due check, and ready deliveries."""
        if asyncio.get_running_loop().time() >= self._next_due:
            await self.check_due()
        await self.deliver()

    async def reload_waiting(self) -> None:
        """Take who still waits from the store (another process of this node delivers)."""
        state = RolloutState.from_json(await self._store.get_state(STATE_KEY))
        if state is not None and state.key == self.keys.current.node_id:
            self.keys.set_known(state.peers)

    async def check_due(self) -> list[RotationKind]:
        """Rotate every kind whose last rotation is ``rotation_days`` old; returns them."""
        self._next_due = asyncio.get_running_loop().time() + DUE_CHECK_SECONDS
        now = self._clock.now()
        due = due_rotations(
            keys_dir=self.files.keys_dir,
            certs_dir=self.files.certs_dir,
            days=self._days,
            now=now,
        )
        for kind in due:
            detail: dict[str, JsonValue] = {}
            if kind is RotationKind.TLS:
                detail["certificate_sha256"] = rotate_tls(self.files.certs_dir, now=now)
                await self._reload_tls()
            elif kind is RotationKind.LOGS:
                detail["key_id"] = f"{self.keyring.rotate(now=now):08x}"
            else:
                statement = rotate_identity(self.files.keys_dir, now=now)
                detail.update(old_node_id=statement.old_node_id, new_node_id=statement.new_node_id)
                await self._adopt()
            record(
                self._audit,
                {"event": "key_rotated", "kind": kind.value, "by": "schedule", **detail},
            )
            log.info("rotated %s (older than %d days)", kind.value, self._days)
        self._remember_stamps()
        return due

    async def pick_up_changes(self) -> None:
        """Apply what another process (``dtim keys rotate``) changed in the key files."""
        stamps = self._current_stamps()
        changed = {name for name, stamp in stamps.items() if self._stamps.get(name) != stamp}
        self._stamps = stamps
        if "keyring" in changed:
            self.keyring.reload()
        if "tls" in changed:
            await self._reload_tls()
        if "identity" in changed:
            await self._adopt()

    async def deliver(self) -> int:
        """Present the next rollover statement to every waiting peer that is due; how many took."""
        taken = 0
        changed = False
        now = self._clock.now()
        by_old = {s.old_node_id: s for s in self._chain}
        for peer_id, key_id in sorted(self.keys.known.items()):
            peer = self._directory.get(peer_id)
            if peer is None or peer.status is PeerStatus.REVOKED:
                self.keys.forget(peer_id)
                changed = True
                continue
            statement = by_old.get(key_id)
            reason = self._undeliverable(statement, key_id, now)
            if reason is not None:
                self._give_up(peer_id, key_id, reason)
                changed = True
                continue
            assert statement is not None  # nosec B101  # _undeliverable said it exists; narrows
            if peer.status is not PeerStatus.APPROVED or self._directory.pin(peer_id) is None:
                continue  # told once approved (it may have approved us with the old key)
            if not self.backoff.ready(peer_id, asyncio.get_running_loop().time()):
                continue
            try:
                await self._transport.post_json(peer, ROLLOVER_PATH, statement.to_json())
            except PeerRejected as exc:
                if _REVOKED not in str(exc):
                    self._failed(peer_id, exc)
                    continue
                # The peer refuses the old key: it pinned the new one already (our
                # previous attempt reached it, but its answer did not reach us).
            except GossipError as exc:
                self._failed(peer_id, exc)
                continue
            self.keys.learned(peer_id, statement.new_node_id)
            self.backoff.succeeded(peer_id)
            record(
                self._audit,
                {
                    "event": "rollover_delivered",
                    "peer": peer_id,
                    "old_node_id": statement.old_node_id,
                    "new_node_id": statement.new_node_id,
                },
            )
            log.info("peer %s took our key rollover", peer_id[:16])
            taken += 1
            changed = True
        if changed:
            await self._save()
            self._drop_unneeded()
        return taken

    def _undeliverable(
        self, statement: RolloverStatement | None, key_id: str, now: datetime
    ) -> str | None:
        if statement is None:
            return "no rollover statement from the key it knows"
        if self.keys.retired(key_id) is None:
            return "the retired key it knows is gone from keys/retired/"
        if now - statement.at > RETRY_WINDOW:
            return f"not reachable within {RETRY_WINDOW.days} days of the rollover"
        return None

    def _failed(self, peer_id: str, exc: Exception) -> None:
        until = self.backoff.failed(peer_id, asyncio.get_running_loop().time())
        wait = until - asyncio.get_running_loop().time()
        log.info("rollover not delivered to %s yet (retry in %.0f s): %s", peer_id[:16], wait, exc)

    def _give_up(self, peer_id: str, key_id: str, reason: str) -> None:
        self.keys.forget(peer_id)
        record(
            self._audit,
            {
                "event": "rollover_abandoned",
                "peer": peer_id,
                "old_node_id": key_id,
                "reason": reason,
            },
        )
        log.warning(
            "peer %s still knows our old key %s and will refuse us: %s; its operator must add "
            "this node again (new fingerprint %s)",
            peer_id[:16],
            key_id[:16],
            reason,
            self.keys.current.fingerprint,
        )

    async def _adopt(self) -> None:
        async with self._adopting:
            await self._adopt_locked()

    async def _adopt_locked(self) -> None:
        running = self.keys.current
        disk = load_identity(self.files.keys_dir)
        if disk.node_id == running.node_id:
            return
        self._chain = load_rollovers(self.files.keys_dir)
        if not links(self._chain, running.node_id, disk.node_id):
            if self._refused != disk.node_id:
                self._unchained(running.node_id, disk.node_id)
            self._refused = disk.node_id
            return
        known = self._waiting(self.keys.known, running.node_id)
        self._started(running.node_id, disk.node_id, known)
        await self._install(disk, known, keep=running)

    def _waiting(self, known: Mapping[str, str], old_key: str) -> dict[str, str]:
        """Every peer not revoked knew ``old_key`` unless it is known to wait on an older one."""
        waiting = dict(known)
        for peer in self._directory.snapshot.peers.values():
            if peer.status is not PeerStatus.REVOKED:
                waiting.setdefault(peer.id, old_key)
        return waiting

    async def _install(
        self, current: NodeIdentity, known: Mapping[str, str], *, keep: NodeIdentity | None = None
    ) -> None:
        retired = load_retired(self.files.keys_dir)
        if keep is not None:
            retired.setdefault(keep.node_id, keep)
        aliases = chain_keys(self._chain)
        self.keys.adopt(current, retired=retired, aliases=aliases, known=known)
        for addressee in self._addressees:
            addressee.node_id = current.node_id
            addressee.aliases = frozenset(aliases)
        await self._save()
        self._drop_unneeded()

    async def _save(self) -> None:
        state = RolloutState(self.keys.current.node_id, self.keys.known)
        await self._store.set_state(STATE_KEY, state.to_json())

    def _drop_unneeded(self) -> None:
        needed = set(self.keys.known.values())
        for node_id in chain_keys(self._chain):
            if node_id in needed or node_id == self.keys.current.node_id:
                continue
            if drop_retired(self.files.keys_dir, node_id):
                log.info(
                    "retired identity key %s deleted: every peer has the new key", node_id[:16]
                )
            self.keys.drop_retired(node_id)

    async def _reload_tls(self) -> None:
        for listener in self._listeners:
            listener.reload_certificate()
        await self._transport.renew()
        log.info("the listeners and new connections use the re-issued TLS certificate")

    def _started(self, old: str, new: str, known: Mapping[str, str]) -> None:
        record(
            self._audit,
            {
                "event": "identity_rollover_started",
                "old_node_id": old,
                "new_node_id": new,
                "peers": len(known),
            },
        )
        log.info("identity rolled over to %s: telling %d peer(s)", new[:16], len(known))

    def _unchained(self, old: str, new: str) -> None:
        record(
            self._audit,
            {"event": "identity_rollover_unusable", "old_node_id": old, "new_node_id": new},
        )
        log.error(
            "identity key changed from %s to %s without a rollover statement from the old key: "
            "peers will refuse the new key until their operators add this node again "
            "(use dtim keys rotate --identity to change the key)",
            old[:16],
            new[:16],
        )

    def _current_stamps(self) -> dict[str, tuple[int, int, int] | None]:
        return {
            "identity": _stamp(self.files.keys_dir / IDENTITY_KEY_FILE),
            "tls": _stamp(self.files.certs_dir / NODE_CERT_FILE),
            "keyring": _stamp(self.keyring.path),
        }

    def _remember_stamps(self) -> None:
        self._stamps = self._current_stamps()
