"""``dtim status``: who this node is and what it holds."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.table import Table

from dtim.cli.common import HomeOption, JsonOption, SetOption, open_home, print_json, stdout
from dtim.config import NodeHome
from dtim.model import PeerStatus


async def collect_status(home: NodeHome) -> dict[str, Any]:
    """Everything ``dtim status`` shows, as plain data."""
    from dtim.service import node_identity, open_store
    from dtim.store.engine import redact_url

    node_id, fingerprint = node_identity(home)
    store = open_store(home)
    async with store:
        counts = await store.counts()
        peers = await store.list_peers()
        watcher_stats = await store.get_state("watchers.stats")
    return {
        "node_id": node_id,
        "fingerprint": fingerprint,
        "endpoint": home.settings.network.public_endpoint,
        "home": str(home.root),
        "database": redact_url(home.database_url),
        "privacy_level": home.settings.privacy.level,
        "indicators": {
            "total": counts.total,
            "by_type": counts.by_type,
            "by_tlp": counts.by_tlp,
            "by_source": counts.by_source,
        },
        "peers": {
            status.value: sum(1 for p in peers if p.status is status) for status in PeerStatus
        },
        "watchers": watcher_stats or {},
    }


def status(
    home: HomeOption = None, json_output: JsonOption = False, sets: SetOption = None
) -> None:
    """Show the node id, fingerprint, endpoint and indicator counts."""
    node = open_home(home, sets)
    report = asyncio.run(collect_status(node))
    if json_output:
        print_json(report)
        return
    stdout.print(f"node id      {report['node_id']}")
    stdout.print(f"fingerprint  {report['fingerprint']}")
    stdout.print(f"endpoint     {report['endpoint']}")
    stdout.print(f"database     {report['database']}")
    stdout.print(f"privacy      {report['privacy_level']}")
    stdout.print("peers        " + ", ".join(f"{k} {v}" for k, v in report["peers"].items()))
    table = Table(title=f"{report['indicators']['total']} indicators")
    table.add_column("by type")
    table.add_column("count", justify="right")
    for kind, count in sorted(report["indicators"]["by_type"].items()):
        table.add_row(kind, str(count))
    for tlp, count in sorted(report["indicators"]["by_tlp"].items()):
        table.add_row(f"TLP:{tlp.upper()}", str(count))
    stdout.print(table)
    for source, stats in sorted(report["watchers"].items()):
        stdout.print(f"watcher {source}: {stats}")
