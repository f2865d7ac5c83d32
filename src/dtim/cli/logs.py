"""``dtim logs show [--date YYYY-MM-DD] [--json]``: decrypt and print the audit log.

Mount with ``app.add_typer(logs.app, name="logs")``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from dtim.cli.common import HomeOption, JsonOption, open_home, print_json, stderr, stdout
from dtim.crypto.auditlog import AuditDay, AuditLog, log_file
from dtim.crypto.keyring import Keyring
from dtim.errors import ConfigError
from dtim.model.clock import SystemClock

app = typer.Typer(help="The encrypted audit log.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """The encrypted audit log."""


@app.command("show")
def show(
    day: Annotated[
        str | None,
        typer.Option(
            "--date", help="UTC day to show, YYYY-MM-DD (default: today).", show_default=False
        ),
    ] = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Decrypt one day of the audit log and print it."""
    node = open_home(home)
    wanted = _parse_day(day) if day else SystemClock().now().date()
    if log_file(node.encrypted_logs, wanted).exists():
        result = AuditLog(node.encrypted_logs, Keyring.load(node.keys_dir)).scan(wanted)
    else:
        result = AuditDay((), 0, False)
    if json_output:
        print_json(
            {
                "date": wanted.isoformat(),
                "records": list(result.records),
                "damaged": result.damaged,
                "torn_tail": result.torn_tail,
            }
        )
        return
    if not result.records:
        stdout.print(f"no audit records for {wanted.isoformat()}")
    for record in result.records:
        rest = " ".join(f"{k}={v}" for k, v in record.items() if k not in ("at", "event"))
        stdout.print(f"{record.get('at', '?')}  {record.get('event', '?'):<18} {rest}".rstrip())
    if result.damaged:
        tail = " (the last one was cut short by a crash)" if result.torn_tail else ""
        stderr.print(f"warning: skipped {result.damaged} damaged record(s){tail}")


def _parse_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"--date {raw!r}: expected YYYY-MM-DD") from None
