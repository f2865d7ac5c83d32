"""Nodes whose clocks differ by more than the signature window (±300 s) refuse each other,
and both the refusing node's 401 and the sender's log name the skew.

The skewed node runs with libfaketime preloaded (Debian package ``faketime``),
not under the ``faketime`` wrapper, which forks and would leave the node running
when it is stopped; the direct request is signed by the test with a clock 400 s
ahead.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dtim.crypto.bodysig import sign_body
from dtim.crypto.httpauth import SignedRequestAuth
from dtim.crypto.identity import load_identity
from dtim.crypto.signatures import MessageSigner
from dtim.crypto.tls import client_context
from dtim.model import FakeClock
from tests.chaos.harness import ChaosNode, wait_for
from tests.mesh.cluster import approve_all, indicators, public_ips

pytestmark = pytest.mark.timeout(240)

Homes = Callable[[Sequence[str]], list[ChaosNode]]
SKEW = 400
"""Seconds the skewed clock is ahead: beyond the default window of 300."""
AHEAD = re.compile(r"clock skew \+(\d+) s \(the signer's clock is \d+ s ahead of the verifier's")
BEHIND = re.compile(r"clock skew -(\d+) s \(the signer's clock is \d+ s behind the verifier's")


def near(found: re.Match[str] | None) -> bool:
    """A skew message for about :data:`SKEW` seconds (the processes take time to run)."""
    return found is not None and abs(int(found.group(1)) - SKEW) <= 30


def skewed_post(sender: ChaosNode, target: ChaosNode, seconds: int) -> httpx.Response:
    """A gossip push from ``sender`` to ``target``, signed ``seconds`` ahead of real time."""
    identity = load_identity(sender.home / "keys")
    context = client_context(
        sender.home / "certs" / "node.crt",
        sender.home / "certs" / "node.key",
        trusted_pems=[(target.home / "certs" / "ca.crt").read_text()],
    )
    clock = FakeClock(datetime.now(UTC) + timedelta(seconds=seconds))
    auth = SignedRequestAuth(
        MessageSigner(identity, clock=clock),
        recipient=target.node_id,
        responder_public_key=target.public_key,
    )
    body = json.dumps(sign_body({"indicators": []}, identity))
    with httpx.Client(verify=context, auth=auth, timeout=10) as client:
        return client.post(f"{target.url}/api/v1/indicators/gossip", content=body)


def test_clocks_beyond_the_window_are_refused_naming_the_skew(homes: Homes) -> None:
    ahead, honest = homes(["ahead", "honest"])
    approve_all([ahead, honest], {})
    libraries = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    skewed = bool(libraries)
    if skewed:
        ahead.settings.update(LD_PRELOAD=libraries[0], FAKETIME=f"+{SKEW}")
    nodes = [ahead, honest]
    for node in nodes:
        node.start()
    # Node documents are unsigned requests: the nodes pin each other's CA whatever the clocks.
    wait_for(lambda: ahead.pinned() >= 1 and honest.pinned() >= 1, "both pinned", 90, nodes)

    refused = skewed_post(ahead, honest, SKEW)
    assert refused.status_code == 401, refused.text
    body = refused.json()
    assert body["error"] == "signature rejected"
    assert near(AHEAD.search(body["reason"])), body
    assert "±300 s" in body["reason"]
    # Within the window the same request is accepted: the skew alone made the difference.
    assert skewed_post(ahead, honest, 60).status_code == 200

    if not skewed:
        pytest.skip("the node-to-node half needs faketime (apt install faketime)")
    values = public_ips(5, start=7000)
    ahead.add(indicators(values))
    # The sender learns why from the 401: its log names the skew; so does the other side's.
    wait_for(lambda: near(AHEAD.search(ahead.log_text())), "the sender logs the skew", 60, nodes)
    wait_for(lambda: near(BEHIND.search(honest.log_text())), "the other logs it", 60, nodes)
    assert not set(values) & honest.values(), "a report crossed the skewed clocks"
