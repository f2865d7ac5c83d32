"""``dtim registry run``: the opt-in peer registry process."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from dtim.cli.common import (
    HomeOption,
    LogFormatOption,
    SetOption,
    open_home,
    with_log_format,
)

app = typer.Typer(help="Run the opt-in peer registry.", no_args_is_help=True)


@app.command("run")
def run(
    home: HomeOption = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=0, max=65535, help="Listen port (default: registry.listen_port, 3040)."
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL: sqlite:///path or postgresql://user@host/db "
            "(default: sqlite data/registry.db in the home).",
        ),
    ] = None,
    sets: SetOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Serve the registry over HTTPS until interrupted (SIGINT/SIGTERM stop it cleanly).

    The home is made with `dtim init` like a node's: the registry signs nothing with its
    key but is named by it, and serves its certificate from certs/.
    """
    from dtim.service import run_registry

    registry_home = open_home(home, with_log_format(sets, log_format))
    asyncio.run(run_registry(registry_home, port=port, database_url=db))
