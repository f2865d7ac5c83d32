"""``dtim indicators export|import``: files for firewalls, SIEMs, MISP and other nodes.

Mount on the indicators group::

    indicators.app.command("export")(indicators_io.export)
    indicators.app.command("import")(indicators_io.import_)

The runtime comes from ``dtim.service.open_taxii_runtime(home)`` (see
:mod:`dtim.cli.taxii`); everything exported passes the privacy filter there.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer

from dtim.cli import taxii
from dtim.cli.common import HomeOption, JsonOption, SetOption, print_json, stderr, stdout


class IoCommands(Protocol):
    """Exports and imports of the runtime, in plain values."""

    async def export(
        self,
        *,
        format: str,
        level: str,
        tlps: list[str],
        groups: list[str],
        min_confidence: int | None,
        types: list[str],
        out: Path | None,
        stream: Any = None,
    ) -> int:
        """Write an export; returns the count."""
        ...

    async def import_(self, path: Path, format: str | None) -> dict[str, Any]:
        """Import a file."""
        ...


async def _run(home: Path | None, sets: list[str] | None, call: Any) -> Any:
    async with taxii._open(home, sets) as runtime:
        return await call(runtime)


def export(
    format: Annotated[
        str, typer.Option("--format", help="stix, csv, txt (one value per line), json or misp.")
    ] = "stix",
    level: Annotated[
        str, typer.Option("--level", help="Privacy level: strict, moderate or open.")
    ] = "moderate",
    tlp: Annotated[
        list[str] | None,
        typer.Option("--tlp", help="Include this TLP (repeatable; default clear and green)."),
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option("--group", help="Recipient group the export is for (AMBER).")
    ] = None,
    min_confidence: Annotated[int | None, typer.Option("--min-confidence", min=0, max=100)] = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="Only this indicator type (repeatable).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="File to write (a directory for misp); default stdout."),
    ] = None,
    home: HomeOption = None,
    sets: SetOption = None,
) -> None:
    """Export indicators through the privacy filter."""

    async def call(runtime: Any) -> int:
        count: int = await runtime.export(
            format=format,
            level=level,
            tlps=tlp or [],
            groups=group or [],
            min_confidence=min_confidence,
            types=type_ or [],
            out=out,
            stream=None if out is not None else sys.stdout.buffer,
        )
        return count

    count = asyncio.run(_run(home, sets, call))
    sys.stdout.flush()
    stderr.print(f"exported {count} indicators as {format}" + (f" to {out}" if out else ""))


def import_(
    file: Annotated[
        Path, typer.Argument(help="File to import (a MISP feed directory or event file for misp).")
    ],
    format: Annotated[
        str | None, typer.Option("--format", help="stix, misp or csv (default: from the name).")
    ] = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Import indicators; a malformed file stores nothing."""

    async def call(runtime: Any) -> dict[str, Any]:
        result: dict[str, Any] = await runtime.import_(file, format)
        return result

    report = asyncio.run(_run(home, sets, call))
    if json_output:
        print_json(report)
        return
    stdout.print(f"imported {report['indicators']} indicators, skipped {report['skipped_count']}")
    for item in report["skipped"][:20]:
        stdout.print(f"  skipped {item['id']}: {item['reason']}", markup=False)
