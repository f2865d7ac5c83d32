"""``dtim peers list|add URL|approve ID|reject ID|revoke ID [--json]``: manual peer approval.

Mount with ``app.add_typer(peers.app, name="peers")``. Every change is
written to the store (a running node applies it within a second) and to the
encrypted audit log. ``ID`` may be a unique prefix of a peer id (6+ hex digits).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.table import Table

from dtim.cli.common import HomeOption, JsonOption, SetOption, open_home, print_json, stderr, stdout

MIN_HEALTHY_PEERS = 4

app = typer.Typer(help="Peers: add, approve, reject, revoke and list.", no_args_is_help=True)

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="Peer id, or a unique prefix of it.")]


@app.callback()
def _group() -> None:
    """Peers: add, approve, reject, revoke and list."""


def _run(home: HomeOption, sets: SetOption, action: str, target: str | None = None) -> Any:
    from dtim.service import peers_command

    node = open_home(home, sets)
    return asyncio.run(peers_command(node, action, target))


def _warn_if_few(peers: list[dict[str, Any]]) -> None:
    approved = sum(1 for p in peers if p.get("status") == "approved")
    if approved < MIN_HEALTHY_PEERS:
        stderr.print(
            f"warning: only {approved} approved peer(s); with fewer than {MIN_HEALTHY_PEERS} "
            "indicators spread slowly and one peer sees most of what you share",
            markup=False,
        )


@app.command("list")
def list_(home: HomeOption = None, json_output: JsonOption = False, sets: SetOption = None) -> None:
    """List known peers with their status, fingerprint, groups, score and last contact."""
    peers: list[dict[str, Any]] = _run(home, sets, "list")
    _warn_if_few(peers)
    if json_output:
        print_json(peers)
        return
    table = Table(title=f"{len(peers)} peers")
    for column in ("id", "status", "endpoint", "fingerprint", "groups", "score", "last contact"):
        table.add_column(column)
    for peer in peers:
        table.add_row(
            peer["id"][:16],
            peer["status"],
            peer["endpoint"],
            peer["fingerprint"],
            ", ".join(peer["groups"]),
            f"{peer['score']:.1f}",
            peer["last_contact"] or "never",
        )
    stdout.print(table)


@app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="The peer's endpoint, https://host:port.")],
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Fetch a node's identity from URL and add it as a pending peer."""
    peer: dict[str, Any] = _run(home, sets, "add", url)
    if json_output:
        print_json(peer)
        return
    stdout.print(f"added peer {peer['id']} ({peer['status']}) at {peer['endpoint']}")
    stdout.print(f"  key fingerprint  {peer['fingerprint']}")
    stdout.print(f"  CA fingerprint   {peer['ca_fingerprint']}")
    stdout.print("Compare the key fingerprint with the peer's operator out of band, then run")
    stdout.print(f"  dtim peers approve {peer['id'][:16]}")


def _decide(action: str, ident: str, home: HomeOption, json_output: bool, sets: SetOption) -> None:
    peer: dict[str, Any] = _run(home, sets, action, ident)
    if json_output:
        print_json(peer)
        return
    stdout.print(f"peer {peer['id']} is now {peer['status']}")
    stdout.print(f"  key fingerprint  {peer['fingerprint']}")
    if action == "approve":
        stdout.print(f"  pinned CA        {peer['ca_fingerprint']}  (mTLS trusts this CA for it)")


@app.command("approve")
def approve(
    ident: IdArgument,
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Approve a peer: gossip with it, accept its requests, pin its CA certificate for mTLS."""
    _decide("approve", ident, home, json_output, sets)


@app.command("reject")
def reject(
    ident: IdArgument,
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Reject a pending peer."""
    _decide("reject", ident, home, json_output, sets)


@app.command("revoke")
def revoke(
    ident: IdArgument,
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Revoke a peer: a running node refuses it from the next request on."""
    _decide("revoke", ident, home, json_output, sets)
