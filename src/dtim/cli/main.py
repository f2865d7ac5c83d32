"""The ``dtim`` command: one Typer app, command groups mounted from their modules."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
import typer

from dtim import __version__
from dtim.cli import (
    admin,
    backup,
    config_cmd,
    demo,
    indicators,
    indicators_io,
    ingest,
    init,
    keys,
    logs,
    node,
    peers,
    privacy,
    registry,
    sensor,
    simulate,
    status,
    taxii,
)
from dtim.cli.common import stderr
from dtim.errors import ConfigError, DTIMError

app = typer.Typer(
    name="dtim",
    help="DTIM, the Decentralized Threat Intelligence Mesh: "
    "share threat indicators with peers you approve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init")(init.init)
app.command("status")(status.status)
app.command("demo")(demo.demo)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.add_typer(indicators.app, name="indicators")
app.add_typer(node.app, name="node")
app.add_typer(config_cmd.app, name="config")
app.add_typer(peers.app, name="peers")
app.add_typer(registry.app, name="registry")
app.add_typer(keys.app, name="keys")
app.add_typer(logs.app, name="logs")
app.add_typer(admin.app, name="admin")
app.add_typer(privacy.app, name="privacy")
app.add_typer(taxii.app, name="taxii")
app.add_typer(sensor.app, name="sensor")
app.command("simulate")(simulate.simulate)
app.command("ingest")(ingest.ingest_command)
indicators.app.command("export")(indicators_io.export)
indicators.app.command("import")(indicators_io.import_)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)


EXIT_CONFIG = 2
EXIT_ERROR = 1


def run(argv: Sequence[str]) -> int:
    """Run the CLI with ``argv``; returns the exit code instead of exiting.

    A DTIMError becomes a one-line message on stderr: exit 2 for configuration
    and usage problems, 1 for everything else. Never a traceback.
    """
    try:
        result = app(args=list(argv), prog_name="dtim", standalone_mode=False)
    except ConfigError as exc:
        stderr.print(f"error: {exc}", markup=False)
        return EXIT_CONFIG
    except DTIMError as exc:
        stderr.print(f"error: {exc}", markup=False)
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        stderr.print("aborted", markup=False)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))
