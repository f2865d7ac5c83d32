"""``dtim demo``: a registry and N nodes on 127.0.0.1, fed with attacks, shown live."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dtim.cli.common import JsonOption, print_json, stdout

POLL_SECONDS = 0.25
"""How often the stores are read: the resolution of the propagation times shown."""


def demo(
    nodes: Annotated[int, typer.Option("--nodes", min=2, max=12, help="How many nodes.")] = 3,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            min=5,
            help="Watch this many seconds once the attacks are written (default: until Ctrl-C).",
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the demo directory (homes, logs, databases) on exit."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.5, help="Gossip interval of the demo nodes, seconds."),
    ] = 2.0,
    json_output: JsonOption = False,
) -> None:
    """Run a throw-away mesh on 127.0.0.1: a registry and N nodes detecting and sharing attacks."""
    from dtim.demo.generator import DEMO_SIGNATURE, AttackPlan
    from dtim.demo.mesh import DemoMesh, remove

    def say(message: str) -> None:
        if not json_output:
            stdout.print(message)

    root = Path(tempfile.mkdtemp(prefix="dtim-demo-"))
    mesh = DemoMesh.create(root, nodes, interval, say)
    summary: dict[str, Any] = {}
    try:
        mesh.start()
        say(f"Started a registry at {mesh.registry_url} and {nodes} nodes; waiting for discovery…")
        asyncio.run(mesh.approve_all(timeout=90))
        mesh.feed(AttackPlan())
        say("Wrote brute force, port scans and web exploit probes into each node's logs.")
        if mesh.infected_node.clamav:
            say(
                "Dropped an infected file (the EICAR test string) into "
                f"{mesh.infected_node.name}'s ClamAV scan directory. The demo's own signature "
                f"names it {DEMO_SIGNATURE} so it is shared; ClamAV's official name marks a "
                "test file, which DTIM keeps local."
            )
        for node in mesh.nodes:
            say(
                f"{node.name}: dashboard http://127.0.0.1:{node.admin_port}/  "
                f"login admin / {node.admin_password}"
            )
        summary = asyncio.run(_watch(mesh, duration, json_output))
    except KeyboardInterrupt:
        say("Interrupted.")
    finally:
        mesh.stop()
        if keep:
            say(f"Kept the demo directory: {root}")
        else:
            remove(root)
    if json_output:
        print_json({**summary, "directory": str(root) if keep else None})


async def _watch(mesh: Any, duration: float | None, quiet: bool) -> dict[str, Any]:
    from dtim.demo.mesh import summarise

    # The watch starts once the attacks are written: discovery and approval on a busy
    # machine can take most of a short run, which then ended before anything was read.
    deadline = None if duration is None else time.monotonic() + duration
    snapshot = await mesh.snapshot()
    if quiet:
        while deadline is None or time.monotonic() < deadline:
            mesh.check_alive()
            await asyncio.sleep(POLL_SECONDS)
            snapshot = await mesh.snapshot()
        return summarise(mesh, snapshot)
    with Live(_render(mesh, snapshot), console=stdout, refresh_per_second=2) as live:
        while deadline is None or time.monotonic() < deadline:
            mesh.check_alive()
            await asyncio.sleep(POLL_SECONDS)
            snapshot = await mesh.snapshot()
            live.update(_render(mesh, snapshot))
    return summarise(mesh, snapshot)


def _render(mesh: Any, snapshot: dict[str, Any]) -> Group:
    from dtim.demo.mesh import summarise

    summary = summarise(mesh, snapshot)
    nodes = Table(
        title=f"DTIM demo mesh: {summary['indicators_everywhere']} indicators reached every node"
    )
    for column in (
        "node",
        "privacy level",
        "detected here",
        "shared / withheld",
        "received from peers",
        "dashboard",
    ):
        nodes.add_column(column)
    for name, row in summary["nodes"].items():
        nodes.add_row(
            name,
            row["privacy_level"],
            str(row["detected"]),
            f"{row['shared']} / {row['withheld']}",
            str(row["received"]),
            row["dashboard"],
        )
    timing = summary["seconds_to_every_node"]
    nodes.caption = (
        f"time to every node (stores read every {POLL_SECONDS} s): "
        f"median {_seconds(timing['median'])}, max {_seconds(timing['max'])}"
        if timing
        else "waiting for gossip…"
    ) + f"\ninternal canaries seen on a peer: {len(summary['leaks'])}"
    recent = Table(title="Latest detections", show_edge=False)
    for column in ("indicator", "detected by", "nodes holding it", "time to every node"):
        recent.add_column(column)
    for row in summary["indicators"][:8]:
        seconds = row["seconds_to_every_node"]
        recent.add_row(
            f"{row['type']} {row['value']}",
            ", ".join(row["detected_by"]),
            f"{row['nodes']}/{len(summary['nodes'])}",
            "…" if seconds is None else _seconds(seconds),
        )
    parts: list[Any] = [nodes, recent]
    for name, example in summary["examples"].items():
        if example is not None:
            level = summary["nodes"][name]["privacy_level"]
            parts.append(
                Text(
                    f"{name} shares at level {level}: {orjson.dumps(example).decode()}",
                    overflow="fold",
                )
            )
    return Group(*parts)


def _seconds(value: float) -> str:
    """A spread read off polled stores: below one poll it is only known to be below it."""
    return f"under {POLL_SECONDS} s" if value < POLL_SECONDS else f"{value:.1f} s"
