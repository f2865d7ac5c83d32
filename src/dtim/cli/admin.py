"""``dtim admin passwd [--password-stdin]`` and ``dtim admin token create``: dashboard access.

Mount with ``app.add_typer(admin.app, name="admin")``. The password is stored as
an Argon2id hash in ``keys/admin.argon2``; changing it logs every open dashboard
session out. A token is printed once; only its SHA-256 is kept.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from dtim.cli.common import HomeOption, JsonOption, open_home, print_json, stderr, stdout
from dtim.errors import ConfigError

app = typer.Typer(
    help="Dashboard and admin API access: password and API tokens.", no_args_is_help=True
)
token_app = typer.Typer(help="Admin API tokens (Authorization: Bearer ...).", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.callback()
def _group() -> None:
    """Dashboard and admin API access: password and API tokens."""


@app.command("passwd")
def passwd(
    home: HomeOption = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the new password from the first line of stdin."
        ),
    ] = False,
) -> None:
    """Set a new admin password (at least 12 characters); open sessions end."""
    from dtim.api.auth import set_admin_password  # like cli/keys.py reaching crypto directly

    node = open_home(home)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New admin password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise ConfigError("no password given")
    set_admin_password(node.keys_dir, password)
    stderr.print("admin password changed; dashboard sessions opened before are logged out")


@token_app.command("create")
def token_create(
    home: HomeOption = None,
    name: Annotated[str, typer.Option("--name", help="A label to recognise the token by.")] = "api",
    blocklist: Annotated[
        bool,
        typer.Option(
            "--blocklist", help="A token that reads /blocklist.txt only (for firewalls' URLs)."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Create an admin API token (or a blocklist-only token) and print it once."""
    from dtim.api.auth import ADMIN_SCOPE, BLOCKLIST_SCOPE, create_api_token

    node = open_home(home)
    scope = BLOCKLIST_SCOPE if blocklist else ADMIN_SCOPE
    token = create_api_token(node.keys_dir, name, now=datetime.now(UTC), scope=scope)
    if json_output:
        print_json({"name": name, "token": token, "scope": scope})
        return
    stdout.print(token)
    admin = node.settings.admin
    if blocklist:
        stderr.print(
            "Shown once. Firewalls fetch: "
            f"http://{admin.listen_address}:{admin.listen_port}/blocklist.txt?type=ipv4&token=<token>"
        )
        return
    stderr.print(
        "Shown once. Use it as: curl -H 'Authorization: Bearer <token>' "
        f"http://{admin.listen_address}:{admin.listen_port}/api/admin/overview"
    )
