"""``dtim keys rotate [--identity|--logs|--tls]``: rotate the node's keys on demand.

Mount with ``app.add_typer(keys.app, name="keys")``. With no flag, all three
kinds rotate. Each rotation is written to the encrypted audit log.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dtim.cli.common import HomeOption, JsonOption, open_home, print_json, stdout
from dtim.crypto.auditlog import AuditLog
from dtim.crypto.keyring import Keyring
from dtim.crypto.rotation import RotationKind, rotate
from dtim.model.clock import SystemClock
from dtim.model.indicator import JsonValue

app = typer.Typer(
    help="Node keys: identity, TLS certificate and log keyring.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Node keys: identity, TLS certificate and log keyring."""


@app.command("rotate")
def rotate_keys(
    identity: Annotated[
        bool, typer.Option("--identity", help="Roll the Ed25519 identity over (peers follow).")
    ] = False,
    logs: Annotated[
        bool, typer.Option("--logs", help="Add a new keyring key for data at rest.")
    ] = False,
    tls: Annotated[
        bool, typer.Option("--tls", help="Re-issue the node certificate from the node CA.")
    ] = False,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Rotate the chosen keys now (all of them when no flag is given)."""
    node = open_home(home)
    chosen = [
        kind
        for kind, wanted in (
            (RotationKind.IDENTITY, identity),
            (RotationKind.TLS, tls),
            (RotationKind.LOGS, logs),
        )
        if wanted
    ] or list(RotationKind)
    now = SystemClock().now()
    done = rotate(chosen, keys_dir=node.keys_dir, certs_dir=node.certs_dir, now=now)
    audit = AuditLog(node.encrypted_logs, Keyring.load_or_create(node.keys_dir, now=now))
    try:
        for kind, detail in done.items():
            event: dict[str, JsonValue] = {"event": "key_rotated", "kind": kind, "by": "cli"}
            if isinstance(detail, dict):
                event.update(detail)
            audit.append(event)
    finally:
        audit.close()
    if json_output:
        print_json({"rotated": done})
        return
    for kind, detail in done.items():
        facts = ", ".join(f"{k} {v}" for k, v in detail.items()) if isinstance(detail, dict) else ""
        stdout.print(f"rotated {kind}: {facts}")
    if RotationKind.IDENTITY.value in done or RotationKind.TLS.value in done:
        stdout.print("a running node picks the new identity/certificate up on its next key check")
