"""``dtim backup`` and ``dtim restore``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dtim.cli.common import HomeOption, open_home, stdout
from dtim.config import resolve_home
from dtim.errors import ConfigError

PassphraseOption = Annotated[
    bool, typer.Option("--passphrase-stdin", help="Read the passphrase from standard input.")
]


def _passphrase(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("Backup passphrase", hide_input=True)
    if typer.prompt("Repeat it", hide_input=True) != first:
        raise ConfigError("the passphrases differ")
    return str(first)


def backup(
    out: Annotated[Path, typer.Option("--out", help="The encrypted archive to write (mode 0600).")],
    passphrase_stdin: PassphraseOption = False,
    home: HomeOption = None,
) -> None:
    """Back up keys, certificates, config and the SQLite store into one encrypted file."""
    from dtim.backup import make_backup

    node = open_home(home)
    members = make_backup(node, out, _passphrase(passphrase_stdin))
    stdout.print(f"wrote {out} ({', '.join(members)})")
    if not node.database_url.startswith("sqlite"):
        stdout.print(
            "the store is on PostgreSQL: back it up with pg_dump as well (docs/operations.md)"
        )


def restore(
    archive: Annotated[Path, typer.Argument(help="An archive made by `dtim backup`.")],
    passphrase_stdin: PassphraseOption = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing home.")] = False,
    home: HomeOption = None,
) -> None:
    """Restore a node home from an encrypted backup."""
    from dtim.backup import restore_backup

    target = resolve_home(home)
    restored = restore_backup(archive, target, _passphrase(passphrase_stdin), force=force)
    stdout.print(f"restored {len(restored)} files into {target}")
