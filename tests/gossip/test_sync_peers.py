"""Peers and manual approval: ``dtim peers`` against a running node, default peers, the
directory a running node keeps, and back-off."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dtim.cli import main, peers
from dtim.errors import PeerRejected, ValidationError
from dtim.gossip.peers import (
    MIN_HEALTHY_PEERS,
    Backoff,
    DefaultPeer,
    adopt_default_peer,
    resolve_peer,
)
from dtim.gossip.transport import NodeInfo, fetch_node_info
from dtim.model import PeerStatus
from tests.gossip.localnode import LocalNode, local_nodes

if not any(group.name == "peers" for group in main.app.registered_groups):
    main.app.add_typer(peers.app, name="peers")


async def cli(
    node: LocalNode, *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run ``dtim ARGS --home NODE`` in a worker thread (it runs its own event loop)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main.run, [*args, "--home", str(node.home.root)])
    out, err = capsys.readouterr()
    return code, out, err


async def write_config(node: LocalNode) -> None:
    """``dtim`` commands need the home's config file (``dtim init`` writes it)."""
    from dtim.config import render_config

    config = node.home.config_dir / "dtim.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(render_config(node.home.settings), encoding="utf-8")


async def test_add_approve_reject_revoke_and_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with local_nodes(tmp_path, ["a", "b", "c"]) as (a, b, c):
        await write_config(a)
        code, out, err = await cli(a, "peers", "add", b.url, "--json", capsys=capsys)
        assert code == 0, err
        added = json.loads(out)
        assert added["id"] == b.id
        assert added["status"] == "pending"
        assert added["fingerprint"] == b.identity.fingerprint
        assert added["ca_fingerprint"]
        await a.runtime.directory.refresh(force=True)
        assert a.runtime.directory.approved(b.id) is None  # pending is not trusted

        code, out, err = await cli(a, "peers", "approve", b.id[:10], "--json", capsys=capsys)
        assert code == 0, err
        assert json.loads(out)["status"] == "approved"
        await a.runtime.directory.refresh(force=True)
        assert a.runtime.directory.approved(b.id) is not None
        assert a.runtime.directory.pin(b.id) == b.ca_pem
        assert b.id in a.runtime.trust.peer_ids  # mTLS trusts its CA now

        code, out, err = await cli(a, "peers", "add", c.url, capsys=capsys)
        assert code == 0, err
        assert c.identity.fingerprint in out
        assert f"dtim peers approve {c.id[:16]}" in out
        code, out, err = await cli(a, "peers", "reject", c.id, "--json", capsys=capsys)
        assert json.loads(out)["status"] == "rejected"

        code, out, err = await cli(a, "peers", "list", "--json", capsys=capsys)
        listed = {p["id"]: p for p in json.loads(out)}
        assert set(listed) == {b.id, c.id}
        assert set(listed[b.id]) >= {
            "id",
            "endpoint",
            "fingerprint",
            "status",
            "groups",
            "score",
            "last_contact",
        }
        assert "only 1 approved peer(s)" in err  # warned loudly

        code, out, err = await cli(a, "peers", "revoke", b.id, "--json", capsys=capsys)
        assert json.loads(out)["status"] == "revoked"
        await a.runtime.directory.refresh(force=True)
        assert b.id not in a.runtime.trust.peer_ids
        events = [r["event"] for day in a.audit.days() for r in a.audit.read(day)]
        for event in ("peer_added", "peer_approved", "peer_rejected", "peer_revoked"):
            assert event in events

        code, _, err = await cli(a, "peers", "approve", "0000000000", capsys=capsys)
        assert code == 1
        assert "no peer" in err


async def test_default_peers_pending_approved_and_mismatched(tmp_path: Path) -> None:
    async with local_nodes(tmp_path, ["a", "b", "c"]) as (a, b, c):

        async def fetch(url: str) -> NodeInfo:
            return await fetch_node_info(url, seconds=5)

        now = datetime.now(UTC)
        store, items = a.store, a.runtime.items
        pending = await adopt_default_peer(store, items, DefaultPeer(b.url), fetch=fetch, now=now)
        assert pending.status is PeerStatus.PENDING
        entry = DefaultPeer(c.url, c.identity.public_key_b64, ("partners",))
        approved = await adopt_default_peer(store, items, entry, fetch=fetch, now=now)
        assert approved.status is PeerStatus.APPROVED
        assert approved.groups == ("partners",)
        assert (await items.pinned_cas())[c.id] == c.ca_pem
        wrong = DefaultPeer(b.url, c.identity.public_key_b64)
        with pytest.raises(PeerRejected, match="not the configured one"):
            await adopt_default_peer(store, items, wrong, fetch=fetch, now=now)
        assert (await resolve_peer(store, c.id[:8])).id == c.id
        with pytest.raises(ValidationError):
            await resolve_peer(store, "zz")


def test_default_peer_entries_are_parsed() -> None:
    assert DefaultPeer.parse(" https://p.example:3030/ ") == DefaultPeer("https://p.example:3030")
    parsed = DefaultPeer.parse({"endpoint": "https://p:1", "public_key": "K", "groups": ["g"]})
    assert parsed == DefaultPeer("https://p:1", "K", ("g",))
    for bad in (
        42,
        {"endpoint": 1},
        {"endpoint": "https://p", "public_key": 3},
        {"endpoint": "https://p", "groups": "g"},
    ):
        with pytest.raises(ValidationError, match="default_peers"):
            DefaultPeer.parse(bad)


async def test_fewer_than_four_approved_peers_is_a_loud_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with local_nodes(tmp_path, ["a", "b"]) as (a, b):
        with caplog.at_level(logging.WARNING, logger="dtim.gossip.peers"):
            await a.approve(b)
        assert any(f"fewer than {MIN_HEALTHY_PEERS}" in r.getMessage() for r in caplog.records)


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(base=2.0, cap=10.0, rng=random.Random(1))
    delays = [backoff.failed("p", 0.0) for _ in range(5)]
    assert all(1.0 <= d <= 10.0 for d in delays)
    assert delays[3] >= 5.0  # 2 * 2**3 = 16, capped at 10, jittered to at least half
    assert not backoff.ready("p", 0.5)
    assert backoff.ready("p", 10.0)
    backoff.succeeded("p")
    assert backoff.failures("p") == 0
    assert backoff.ready("p", 0.0)
