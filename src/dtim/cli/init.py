"""``dtim init``: create a node home with config, keys, certificates and data directories."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from dtim.cli.common import HomeOption, JsonOption, print_json, stdout
from dtim.config import NodeHome, Settings, render_config, resolve_home
from dtim.errors import ConfigError


def init(
    home: HomeOption = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="URL peers will use to reach this node (default https://<hostname>:3030).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite an existing home's config, keys and certificates."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Create a node home: config/dtim.toml, keys/, certs/ and data/."""
    from dtim.service import initialise_home

    root = resolve_home(home)
    if (root / "config" / "dtim.toml").exists() and not force:
        raise ConfigError(
            f"{root} is already a DTIM home; "
            "pass --force to overwrite its config, keys and certificates"
        )
    url = endpoint or f"https://{socket.getfqdn().lower()}:3030"
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(
            f"--endpoint {url!r}: expected an https:// URL with a host name or address"
        )
    settings = Settings()
    settings = replace(settings, network=replace(settings.network, public_endpoint=url))
    for sub in ("config", "data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    config_file = root / "config" / "dtim.toml"
    config_file.write_text(render_config(settings), encoding="utf-8")
    os.chmod(config_file, 0o640)
    created = initialise_home(NodeHome(root=root, settings=settings), host=parts.hostname)
    summary = {
        "home": str(root),
        "node_id": created.node_id,
        "fingerprint": created.fingerprint,
        "endpoint": url,
        "admin_password": created.admin_password,
        "config": str(config_file),
    }
    if json_output:
        print_json(summary)
        return
    stdout.print(f"Created DTIM node home at {root}")
    stdout.print(f"  node id      {created.node_id}")
    stdout.print(
        f"  fingerprint  {created.fingerprint}   (peers compare this before approving you)"
    )
    stdout.print(f"  endpoint     {url}")
    stdout.print(f"  config       {config_file}")
    stdout.print(
        f"  admin login  admin / {created.admin_password}   "
        "(shown once; change with `dtim admin passwd`)"
    )
    stdout.print(f"Next: edit the [watchers] paths, then `dtim node run --home {_quote(root)}`.")


def _quote(path: Path) -> str:
    text = str(path)
    return f"'{text}'" if " " in text else text
