"""The overview's gossip health rows: readable text, never Python reprs."""

from __future__ import annotations

from dtim.web.pages import health_rows

PEER = "037f3520e772a9dc187449620387c63ea74879ef8d48fd8e78516b4aa04b9875"


def test_health_rows_are_plain_text() -> None:
    rows = dict(
        health_rows(
            {
                "status": "running",
                "rounds": 1234,
                "last_round": "2026-11-28T05:56:12.345678+00:00",
                "backing_off": [],
                "quarantined": [PEER],
                "items": {"received": 1, "local": 5},
                "healthy": True,
                "last_session": {"peer": PEER, "pushed": 0, "pulled": 2},
                "bytes_sent": 20480,
                "warning": None,
                "peers": {PEER: {"bytes_sent": 20480, "bytes_received": 512, "calls": 3}},
            }
        )
    )
    assert rows == {
        "status": "running",
        "rounds": "1,234",
        "last round": "2026-11-28 05:56:12 UTC",
        "backing off": "none",
        "quarantined": "037f3520e772a9dc…",
        "items": "received 1, local 5",
        "healthy": "yes",
        "last session": "peer 037f3520e772a9dc…, pushed 0, pulled 2",
        "bytes sent": "20,480",
        "warning": "—",
    }
