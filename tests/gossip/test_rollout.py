"""Key rotation in a running node and rollover delivery: the due check, who still waits,
per-peer signing keys, and carrying on after a restart — on real in-process nodes
(uvicorn with mTLS on 127.0.0.1, SQLite stores, real key files)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dtim.crypto.certs import NODE_CERT_FILE, certificate_fingerprint, issue_node_certificates
from dtim.crypto.identity import NodeIdentity, create_identity, load_identity
from dtim.crypto.keyring import Keyring
from dtim.crypto.nodekeys import NodeKeys
from dtim.crypto.rotation import (
    RotationKind,
    first_node_id,
    load_rollovers,
    make_rollover,
    retired_key_path,
    rotate_identity,
)
from dtim.crypto.signatures import MessageSigner, PeerKey, RequestVerifier, StaticPeerKeys
from dtim.errors import PeerRejected, SignatureError
from dtim.gossip.report import Report
from dtim.gossip.rollout import (
    STATE_KEY,
    KeyMaintenance,
    RolloutState,
    chain_keys,
    links,
)
from dtim.model import Clock, FakeClock, Peer, PeerId, PeerStatus, SystemClock, Tlp
from dtim.model.indicator import JsonValue
from dtim.service import key_maintenance
from tests.gossip.localnode import LocalNode, local_nodes
from tests.gossip.reports import make_report


def test_links_follow_the_chain_and_a_broken_chain_has_none() -> None:
    k0, k1, k2 = (NodeIdentity.generate() for _ in range(3))
    now = datetime.now(UTC)
    chain = [make_rollover(k0, k1, now=now), make_rollover(k1, k2, now=now)]

    assert links(chain, k0.node_id, k2.node_id) == chain
    assert links(chain, k1.node_id, k2.node_id) == chain[1:]
    assert links(chain, k2.node_id, k2.node_id) == []
    assert links(chain[1:], k0.node_id, k2.node_id) == []
    assert chain_keys(chain) == {k0.node_id: k0.public_key_b64, k1.node_id: k1.public_key_b64}


def test_rollout_state_round_trips_and_ignores_garbage() -> None:
    state = RolloutState("k1", {"peer": "k0"})
    assert RolloutState.from_json(state.to_json()) == state
    cases: list[JsonValue] = [None, [], {"key": 1}, {"key": "k1", "peers": []}]
    for garbage in cases:
        assert RolloutState.from_json(garbage) is None


def test_node_keys_sign_with_the_key_each_peer_knows() -> None:
    old, new = NodeIdentity.generate(), NodeIdentity.generate()
    keys = NodeKeys(
        new,
        retired={old.node_id: old},
        aliases={old.node_id: old.public_key_b64},
        known={"waiting": old.node_id, "lost": "f" * 64},
        owner=lambda key_id: "waiting" if key_id == "waiting-key" else None,
    )

    assert keys.for_peer("waiting") is old
    assert keys.for_peer("waiting-key") is old  # a requester's key id, resolved to its peer
    assert keys.for_peer("other") is new
    assert keys.for_peer("lost") is new  # its retired key is gone: only the current one is left
    assert keys.node_ids == {old.node_id, new.node_id}
    assert keys.public_key_of(old.node_id) == old.public_key_b64
    assert keys.public_key_of("nobody") is None
    keys.learned("waiting", new.node_id)
    assert keys.for_peer("waiting") is new
    assert "waiting" not in keys.known


async def test_signed_requests_use_the_per_peer_key_and_old_ids_stay_recipients() -> None:
    old, new, peer = (NodeIdentity.generate() for _ in range(3))
    keys = NodeKeys(new, retired={old.node_id: old}, known={peer.node_id: old.node_id})
    signer = MessageSigner(keys)
    made = signer.sign_request(
        method="POST", path="/x", query=None, body=b"{}", recipient=peer.node_id
    )
    assert made.key_id == old.node_id
    assert signer.key_id == new.node_id

    # The peer addresses us by our old id: accepted once it is an alias, refused otherwise.
    sender = MessageSigner(peer)
    known = StaticPeerKeys([PeerKey(peer.node_id, peer.public_key_b64, PeerStatus.APPROVED)])
    request = sender.sign_request(
        method="POST", path="/x", query=None, body=b"{}", recipient=old.node_id
    )
    headers = [(k, v) for k, v in request.headers]
    strict = RequestVerifier(new.node_id, known)
    with pytest.raises(SignatureError, match="wrong recipient"):
        await strict.verify(method="POST", path="/x", query=None, headers=headers, body=b"{}")
    lenient = RequestVerifier(new.node_id, known, aliases=[old.node_id])
    verified = await lenient.verify(
        method="POST", path="/x", query=None, headers=headers, body=b"{}"
    )
    assert verified.peer_id == peer.node_id


# -- on real nodes ------------------------------------------------------------------------


def fresh(value: str, **overrides: Any) -> Report:
    """A report made this hour (the shared factory's is from March)."""
    bucket = int(datetime.now(UTC).timestamp()) // 3600 * 3600
    return make_report(value, bucket=bucket, expires=bucket + 30 * 86400, **overrides)


def _dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[list[LocalNode]]:
    async with local_nodes(tmp_path, ["a", "b"]) as nodes:
        a, b = nodes
        await a.approve(b)
        await b.approve(a)
        yield nodes


def _maintenance(node: LocalNode, *, clock: Clock | None = None, days: int = 7) -> KeyMaintenance:
    settings = node.home.settings
    home = replace(
        node.home,
        settings=replace(settings, security=replace(settings.security, key_rotation_days=days)),
    )
    return key_maintenance(
        home, node.store, node.runtime, Keyring.load(node.home.keys_dir), clock or SystemClock()
    )


async def _ghost(node: LocalNode, root: Path) -> Peer:
    """An approved peer (with a CA of its own) that knew our old key and is not reachable."""
    ghost = NodeIdentity.generate()
    made = issue_node_certificates(root / "ghost", ["127.0.0.1"], now=datetime.now(UTC))
    ca_pem = made.ca_cert.read_text()
    peer = Peer(
        id=PeerId(ghost.node_id),
        endpoint=_dead_endpoint(),
        public_key=ghost.public_key_b64,
        fingerprint=ghost.fingerprint,
        status=PeerStatus.APPROVED,
        added_at=datetime.now(UTC),
    )
    await node.store.save_peer(peer)
    await node.runtime.items.pin_peer_ca(peer.id, ca_pem, now=datetime.now(UTC))
    await node.runtime.directory.refresh(force=True)
    return peer


async def test_nothing_is_due_for_fresh_keys_and_everything_after_the_period(
    pair: list[LocalNode],
) -> None:
    a, _ = pair
    clock = FakeClock(datetime.now(UTC))
    maintenance = _maintenance(a, clock=clock)
    await maintenance.prepare()
    keyring = maintenance.keyring
    cert = a.home.certs_dir / NODE_CERT_FILE
    before = (a.identity.node_id, keyring.key_ids, certificate_fingerprint(cert.read_bytes()))

    assert await maintenance.check_due() == []
    clock.advance(timedelta(days=6, hours=23).total_seconds())
    assert await maintenance.check_due() == []
    clock.advance(timedelta(hours=2).total_seconds())
    due = await maintenance.check_due()

    assert set(due) == set(RotationKind)
    assert maintenance.keys.current.node_id != before[0]
    assert load_identity(a.home.keys_dir).node_id == maintenance.keys.current.node_id
    assert len(keyring.key_ids) == len(before[1]) + 1  # the running keyring, old keys kept
    assert certificate_fingerprint(cert.read_bytes()) != before[2]
    rotated = [e for e in a.audit.read(datetime.now(UTC).date()) if e["event"] == "key_rotated"]
    assert {(e["kind"], e["by"]) for e in rotated} == {(k.value, "schedule") for k in RotationKind}
    assert await maintenance.check_due() == []  # just rotated


async def test_the_schedule_is_off_at_zero_days(pair: list[LocalNode]) -> None:
    a, _ = pair
    clock = FakeClock(datetime.now(UTC) + timedelta(days=400))
    maintenance = _maintenance(a, clock=clock, days=0)
    await maintenance.prepare()
    assert await maintenance.check_due() == []
    assert maintenance.keys.current.node_id == a.identity.node_id


async def test_a_rollover_reaches_the_reachable_peer_and_waits_for_the_other(
    pair: list[LocalNode], tmp_path: Path
) -> None:
    a, b = pair
    ghost = await _ghost(a, tmp_path)
    maintenance = _maintenance(a)
    await maintenance.prepare()
    old = a.identity

    statement = rotate_identity(a.home.keys_dir, now=datetime.now(UTC))  # dtim keys rotate
    await maintenance.pick_up_changes()

    keys = maintenance.keys
    assert keys.current.node_id == statement.new_node_id
    assert keys.known == {b.id: old.node_id, ghost.id: old.node_id}
    assert keys.node_ids == {old.node_id, statement.new_node_id}
    document = a.runtime.api.document()
    assert (document["id"], document["public_key"]) == (
        statement.new_node_id,
        statement.new_key,
    )

    assert await maintenance.deliver() == 1

    assert keys.known == {ghost.id: old.node_id}
    assert maintenance.backoff.failures(ghost.id) == 1
    assert await a.store.get_state(STATE_KEY) == {
        "key": statement.new_node_id,
        "peers": {ghost.id: old.node_id},
    }
    held = await b.store.get_peer(a.id)
    assert held is not None
    assert (held.public_key, held.status) == (statement.new_key, PeerStatus.APPROVED)
    assert keys.for_peer(b.id) is keys.current
    assert keys.for_peer(ghost.id).node_id == old.node_id
    # Gossip both ways still verifies: a signs with its new key; b addresses a by its old id.
    a_at_b = b.runtime.directory.get(a.id)
    b_at_a = a.runtime.directory.get(b.id)
    assert a_at_b is not None
    assert b_at_a is not None
    assert await a.runtime.transport.push(b_at_a, [fresh("45.155.0.1")]) == 1
    assert await b.runtime.transport.push(a_at_b, [fresh("45.155.0.2")]) == 1
    # RED for a under its old id (the id b knows it by) is still for a; for others it is not.
    red = [
        fresh("45.155.0.5", tlp=Tlp.RED, recipients=(old.node_id,)),
        fresh("45.155.0.6", tlp=Tlp.RED, recipients=(ghost.id,)),
    ]
    assert await b.runtime.transport.push(a_at_b, red) == 1
    assert retired_key_path(a.home.keys_dir, old.node_id).exists()  # the ghost still needs it
    events = {e["event"] for e in a.audit.read(datetime.now(UTC).date())}
    assert {"identity_rollover_started", "rollover_delivered"} <= events

    # Delivered, but the answer was lost: b now refuses the old key, which tells a it is done.
    keys.set_known({**keys.known, b.id: old.node_id})
    with pytest.raises(PeerRejected, match="key revoked"):
        await a.runtime.transport.push(b_at_a, [fresh("45.155.0.3")])
    assert await maintenance.deliver() == 1
    assert keys.known == {ghost.id: old.node_id}
    assert any(
        e["event"] == "peer_key_rolled_over" and e["peer"] == a.id
        for e in b.audit.read(datetime.now(UTC).date())
    )


async def test_a_restart_carries_on_and_a_revoked_peer_releases_the_old_key(
    pair: list[LocalNode], tmp_path: Path
) -> None:
    a, b = pair
    ghost = await _ghost(a, tmp_path)
    first = _maintenance(a)
    await first.prepare()
    old = a.identity
    rotate_identity(a.home.keys_dir, now=datetime.now(UTC))
    await first.pick_up_changes()
    await first.deliver()

    # A restarted node: keys loaded afresh from disk, state from the store.
    restarted = load_identity(a.home.keys_dir)
    a.runtime.keys = NodeKeys(restarted)
    second = _maintenance(a)
    await second.prepare()
    assert second.keys.known == {ghost.id: old.node_id}
    assert second.keys.for_peer(ghost.id).node_id == old.node_id
    assert second.keys.for_peer(b.id) is second.keys.current

    await a.store.save_peer(replace(ghost, status=PeerStatus.REVOKED))
    await a.runtime.directory.refresh(force=True)
    await second.deliver()

    assert second.keys.known == {}
    assert not retired_key_path(a.home.keys_dir, old.node_id).exists()
    assert len(load_rollovers(a.home.keys_dir)) == 1  # statements stay: they prove the chain
    assert first_node_id(a.home.keys_dir) == old.node_id  # the leader lock's key stays


async def test_a_key_replaced_without_a_statement_is_not_adopted(pair: list[LocalNode]) -> None:
    a, _ = pair
    maintenance = _maintenance(a)
    await maintenance.prepare()

    create_identity(a.home.keys_dir, overwrite=True)  # dtim init --force, not a rollover
    await maintenance.pick_up_changes()

    assert maintenance.keys.current.node_id == a.identity.node_id
    events = [e["event"] for e in a.audit.read(datetime.now(UTC).date())]
    assert "identity_rollover_unusable" in events
