"""Bytes this node's gossip calls sent to and got back from each peer (for the dashboard).

:class:`~dtim.gossip.transport.HttpTransport` records every call it makes
(reconcile, pull, push, stem): the request body it sent and the response body
it received. The counts live in memory and restart with the process, like the
``/metrics`` counters.
"""

from __future__ import annotations

from dataclasses import dataclass

from dtim.model.indicator import JsonObject


@dataclass(slots=True)
class PeerTraffic:
    """One peer's totals."""

    bytes_sent: int = 0
    bytes_received: int = 0
    calls: int = 0


class TrafficMeter:
    """Per-peer byte counts of the calls this node made."""

    def __init__(self) -> None:
        self._peers: dict[str, PeerTraffic] = {}

    def record(self, peer_id: str, *, sent: int, received: int) -> None:
        """Count one call to ``peer_id``: ``sent`` request and ``received`` response bytes."""
        traffic = self._peers.setdefault(peer_id, PeerTraffic())
        traffic.bytes_sent += sent
        traffic.bytes_received += received
        traffic.calls += 1

    def peers(self) -> dict[str, JsonObject]:
        """``{peer id: {"bytes_sent", "bytes_received", "calls"}}`` for every peer called."""
        return {
            peer_id: {
                "bytes_sent": t.bytes_sent,
                "bytes_received": t.bytes_received,
                "calls": t.calls,
            }
            for peer_id, t in self._peers.items()
        }

    def totals(self) -> tuple[int, int]:
        """Bytes sent and received over every peer."""
        sent = sum(t.bytes_sent for t in self._peers.values())
        return sent, sum(t.bytes_received for t in self._peers.values())
