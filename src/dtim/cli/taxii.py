"""``dtim taxii``: TAXII consumer accounts, and pulling a remote TAXII 2.1 collection.

Mount with ``app.add_typer(taxii.app, name="taxii")``. The commands reach the
node through a runtime (``dtim.taxii.runtime.NodeRuntime``) that
``dtim.service.open_taxii_runtime(home)`` opens; tests install their
own with :func:`configure`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dtim.cli.common import (
    HomeOption,
    JsonOption,
    SetOption,
    open_home,
    print_json,
    stderr,
    stdout,
)
from dtim.errors import ValidationError


class TaxiiCommands(Protocol):
    """What these commands need from the node (``NodeRuntime``), in plain values."""

    def add_user(
        self,
        name: str,
        password: str | None,
        *,
        level: str,
        tlps: list[str],
        groups: list[str],
        can_write: bool,
        cert_fingerprints: list[str],
    ) -> dict[str, Any]:
        """Create an account."""
        ...

    def remove_user(self, name: str) -> None:
        """Delete an account."""
        ...

    def list_users(self) -> list[dict[str, Any]]:
        """Every account."""
        ...

    async def pull(
        self,
        url: str,
        collection: str,
        *,
        user: str | None,
        password: str | None,
        since: str | None,
        on_page: Callable[[int, int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Pull a collection into the node."""
        ...


RuntimeFactory = Callable[
    [Path | None, list[str] | None], AbstractAsyncContextManager[TaxiiCommands]
]
_factory: RuntimeFactory | None = None


def configure(factory: RuntimeFactory | None) -> None:
    """Use ``factory`` to open the runtime (None: the service's)."""
    global _factory
    _factory = factory


def _open(home: Path | None, sets: list[str] | None) -> AbstractAsyncContextManager[TaxiiCommands]:
    if _factory is not None:
        return _factory(home, sets)
    from dtim import service

    runtime: AbstractAsyncContextManager[TaxiiCommands] = service.open_taxii_runtime(
        open_home(home, sets)
    )
    return runtime


def read_password_stdin() -> str:
    """One line from standard input, without its line break.

    Raises:
        ValidationError: standard input was empty.
    """
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ValidationError("password", "nothing on standard input (pipe the password in)")
    return password


app = typer.Typer(
    help="TAXII 2.1: consumer accounts and pulling remote collections.", no_args_is_help=True
)
users = typer.Typer(
    help="Accounts that may read this node's TAXII collections.", no_args_is_help=True
)
app.add_typer(users, name="users")


async def _with_runtime(
    home: Path | None, sets: list[str] | None, action: Callable[[TaxiiCommands], Any]
) -> Any:
    async with _open(home, sets) as runtime:
        result = action(runtime)
        if asyncio.iscoroutine(result):
            result = await result
        return result


@users.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    level: Annotated[
        str, typer.Option("--level", help="Privacy level: strict, moderate or open.")
    ] = "moderate",
    tlp: Annotated[
        list[str] | None,
        typer.Option("--tlp", help="A TLP it may read (repeatable; CLEAR always)."),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="A recipient group it belongs to (repeatable)."),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="May post to the inbox collection.")
    ] = False,
    cert: Annotated[
        list[str] | None,
        typer.Option("--cert-fingerprint", help="SHA-256 of an accepted client certificate."),
    ] = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Create a TAXII account (the password is hashed with Argon2id)."""
    password = read_password_stdin() if password_stdin else None
    if password is None and not cert:
        raise ValidationError("password", "give --password-stdin or --cert-fingerprint")
    created = asyncio.run(
        _with_runtime(
            home,
            sets,
            lambda rt: rt.add_user(
                name,
                password,
                level=level,
                tlps=tlp or [],
                groups=group or [],
                can_write=write,
                cert_fingerprints=cert or [],
            ),
        )
    )
    if json_output:
        print_json(created)
    else:
        stdout.print(
            f"added TAXII account {name} "
            f"(level {created['level']}, TLP {', '.join(created['tlps'])})"
        )


@users.command("remove")
def remove_user(
    name: Annotated[str, typer.Argument(help="Login name.")],
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Delete a TAXII account."""
    asyncio.run(_with_runtime(home, sets, lambda rt: rt.remove_user(name)))
    if json_output:
        print_json({"removed": name})
    else:
        stdout.print(f"removed TAXII account {name}")


@users.command("list")
def list_users(
    home: HomeOption = None, json_output: JsonOption = False, sets: SetOption = None
) -> None:
    """List TAXII accounts."""
    found = asyncio.run(_with_runtime(home, sets, lambda rt: rt.list_users()))
    if json_output:
        print_json(found)
        return
    if not found:
        stdout.print("no TAXII accounts")
    for item in found:
        writes = ", inbox" if item["can_write"] else ""
        stdout.print(
            f"{item['name']}  level {item['level']}  TLP {', '.join(item['tlps'])}{writes}"
        )


@app.command("pull")
def pull(
    url: Annotated[str, typer.Argument(help="Discovery or API root URL of the TAXII 2.1 server.")],
    collection: Annotated[str, typer.Option("--collection", help="Collection id, alias or title.")],
    user: Annotated[str | None, typer.Option("--user", help="User name for HTTP Basic.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only objects added after this time (default: resume)."),
    ] = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Pull a remote collection in as local indicators, resuming where the last pull stopped."""
    password = read_password_stdin() if password_stdin else None
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task("pulling", total=None)

        def on_page(pages: int, objects: int, indicators: int) -> None:
            bar.update(
                task, description=f"{pages} pages, {objects} objects, {indicators} indicators"
            )

        result = asyncio.run(
            _with_runtime(
                home,
                sets,
                lambda rt: rt.pull(
                    url, collection, user=user, password=password, since=since, on_page=on_page
                ),
            )
        )
    if json_output:
        print_json(result)
    else:
        stdout.print(
            f"pulled {result['objects']} objects in {result['pages']} pages: "
            f"{result['indicators']} indicators, "
            f"{result['skipped_count']} skipped; next pull starts after {result['added_after']}"
        )
