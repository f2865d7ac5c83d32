"""``dtim node run``: the node process."""

from __future__ import annotations

import asyncio

import typer

from dtim.cli.common import HomeOption, LogFormatOption, SetOption, open_home, with_log_format

app = typer.Typer(help="Run the node.", no_args_is_help=True)


@app.command("run")
def run(
    home: HomeOption = None, sets: SetOption = None, log_format: LogFormatOption = None
) -> None:
    """Run the node until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    from dtim.service import run_node

    node = open_home(home, with_log_format(sets, log_format))
    asyncio.run(run_node(node))
