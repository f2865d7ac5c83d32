"""``dtim ingest SOURCE PATH... [--json] [--store]``: run one watcher over whole files.

For ``zeek`` PATH is a log directory; for ``clamav`` a directory is scanned
(clamd or clamscan) and a file is read as clamd/clamscan output. Detections
are printed (JSON lines, or a table), never their evidence. ``--store`` also
writes them, with their evidence, into the node's store.

Mounted by the root app as ``app.command("ingest")(ingest_command)``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from dtim.cli.common import HomeOption, open_home
from dtim.config import NodeHome
from dtim.errors import DTIMError
from dtim.model.clock import iso
from dtim.watchers.base import (
    InputKind,
    MemorySink,
    SightingSink,
    WatcherContext,
    WatcherSpec,
    parse_networks,
)
from dtim.watchers.clamav import ClamavWatcher
from dtim.watchers.clamscan import DirectoryScanner, choose_engine
from dtim.watchers.ingest import RecordingSink, detections, expand, ingest
from dtim.watchers.plugins import make_plugin_manager, registered_watchers
from dtim.watchers.runner import WatcherStats

PROGRESS_BYTES = 8 * 1024 * 1024
"""Show a progress bar on stderr when the input is at least this big."""

out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


async def ingest_into_store(
    node: NodeHome,
    spec: WatcherSpec,
    paths: list[str],
    context: WatcherContext,
    *,
    show_progress: bool = False,
) -> tuple[RecordingSink, WatcherStats]:
    """Run ``spec``'s watcher over ``paths`` into the node's store (evidence sealed)."""
    from dtim.crypto.keyring import Keyring
    from dtim.model import SystemClock
    from dtim.service import StoreSink, open_store

    keyring = Keyring.load_or_create(node.keys_dir, now=SystemClock().now())
    async with open_store(node) as store:
        return await run_ingest(
            spec, paths, StoreSink(store, keyring), context, show_progress=show_progress
        )


async def run_ingest(
    spec: WatcherSpec,
    paths: list[str],
    sink: SightingSink,
    context: WatcherContext,
    *,
    show_progress: bool = False,
) -> tuple[RecordingSink, WatcherStats]:
    """Run ``spec``'s watcher over ``paths`` into ``sink``."""
    recording = RecordingSink(sink)
    watcher = spec.create(context)
    stats = WatcherStats(spec.name)
    directories = [p for p in paths if os.path.isdir(p)]  # noqa: ASYNC240  # a stat, once, at start
    if spec.input is InputKind.SCAN and directories and isinstance(watcher, ClamavWatcher):
        engine = await choose_engine(watcher.clamd_socket, watcher.clamscan, watcher.database)
        for directory in directories:
            scanner = DirectoryScanner(watcher, directory, engine, settle_seconds=0)
            while True:  # a poll takes at most MAX_FILES_PER_POLL files: repeat until none is new
                scanned = scanner.scanned
                found = await scanner.poll_once(recording, commit_positions=False)
                stats.sightings += len(found)
                if scanner.scanned == scanned:
                    break
        paths = [p for p in paths if p not in directories]
    files = [f for f in expand(paths) if os.path.isfile(f)]  # noqa: ASYNC240  # stats, once, at start
    total = sum(os.path.getsize(f) for f in files)  # noqa: ASYNC240  # same
    if show_progress and total >= PROGRESS_BYTES:
        columns = ("{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task(spec.name, total=total)
            await ingest(
                watcher, paths, recording, progress=lambda n: bar.advance(task, n), stats=stats
            )
    else:
        await ingest(watcher, paths, recording, stats=stats)
    return recording, stats


def _fail(message: str) -> typer.Exit:
    err.print(f"error: {message}")
    return typer.Exit(2)


def ingest_command(
    source: Annotated[
        str,
        typer.Argument(help="Watcher: ufw, fail2ban, suricata, zeek, clamav, nginx_access, ..."),
    ],
    paths: Annotated[
        list[Path],
        typer.Argument(help="Log files (a directory for zeek; a directory to scan for clamav)."),
    ],
    json_lines: Annotated[
        bool, typer.Option("--json", help="Print JSON lines (one per detection) and nothing else.")
    ] = False,
    store: Annotated[
        bool,
        typer.Option(
            "--store", help="Also write detections and their evidence into the node store."
        ),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Run one watcher over whole files and print what it detects."""
    specs = registered_watchers(make_plugin_manager())
    spec = specs.get(source)
    if spec is None:
        raise _fail(f"unknown source {source!r} (known: {', '.join(sorted(specs))})")
    for path in paths:
        if not path.exists():
            raise _fail(f"{path} does not exist")
    node = open_home(home, require=store)
    settings = node.settings
    context = WatcherContext(
        settings=dict(settings.watchers.rules.get(source, {})),
        own_networks=parse_networks(list(settings.privacy.own_networks)),
        own_domains=tuple(settings.privacy.own_domains),
    )
    try:
        files = [str(p) for p in paths]
        recording, stats = asyncio.run(
            ingest_into_store(node, spec, files, context, show_progress=not json_lines)
            if store
            else run_ingest(spec, files, MemorySink(), context, show_progress=not json_lines)
        )
    except DTIMError as exc:
        raise _fail(str(exc)) from exc
    rows = detections(recording.sightings)
    if json_lines:
        for indicator, rule, count in rows:
            document = {
                "type": indicator.type,
                "value": indicator.value,
                "confidence": indicator.confidence,
                "tags": list(indicator.tags),
                "source": source,
                "rule": rule,
                "sightings": count,
                "first_seen": iso(indicator.first_seen),
                "last_seen": iso(indicator.last_seen),
                "scope": indicator.scope.value,
            }
            out.print(orjson.dumps(document).decode(), markup=False, highlight=False)
        return
    table = Table(
        title=f"{source}: {len(rows)} detections from {stats.lines} lines "
        f"({stats.parse_errors} skipped)"
    )
    for column in (
        "type",
        "value",
        "confidence",
        "rule",
        "sightings",
        "first seen",
        "last seen",
        "scope",
        "tags",
    ):
        table.add_column(column)
    for indicator, rule, count in rows:
        table.add_row(
            indicator.type,
            indicator.value,
            str(indicator.confidence),
            rule,
            str(count),
            iso(indicator.first_seen),
            iso(indicator.last_seen),
            indicator.scope.value,
            ", ".join(indicator.tags),
        )
    out.print(table)
