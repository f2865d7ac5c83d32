"""``dtim indicators``: add, list and show indicators in the local store; analysts' verdicts."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.table import Table

from dtim.cli.common import HomeOption, JsonOption, SetOption, open_home, print_json, stdout
from dtim.errors import DTIMError
from dtim.model import Indicator, SystemClock, Tlp, make_indicator, normalize
from dtim.model.normalize import infer_type

app = typer.Typer(help="Add, list and show indicators.", no_args_is_help=True)


@app.command("add")
def add(
    type_: Annotated[
        str,
        typer.Argument(
            metavar="TYPE",
            help="ipv4, ipv6, cidr, domain, url, email, md5, sha1, sha256, sha512, or auto.",
        ),
    ],
    value: Annotated[
        str, typer.Argument(help="The value; defanged forms (hxxp, [.]) are accepted.")
    ],
    tlp: Annotated[
        str, typer.Option("--tlp", help="clear|white, green, amber, amber+strict, red.")
    ] = "green",
    confidence: Annotated[int, typer.Option("--confidence", min=0, max=100)] = 70,
    tags: Annotated[
        list[str] | None, typer.Option("--tags", help="A tag; repeat or separate with commas.")
    ] = None,
    scope: Annotated[
        str, typer.Option("--scope", help="local, private, group or public.")
    ] = "private",
    recipient: Annotated[
        list[str] | None,
        typer.Option("--recipient", help="Peer id or group (AMBER/RED); repeatable."),
    ] = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Add an indicator by hand (an analyst's report)."""
    from dtim.service import open_store

    node = open_home(home, sets)
    split_tags = [t for raw in tags or [] for t in raw.split(",")]
    indicator = make_indicator(
        value,
        None if type_ == "auto" else type_,
        now=SystemClock().now(),
        confidence=confidence,
        tags=split_tags,
        tlp=tlp,
        scope=scope,
        recipients=recipient or [],
        sources=["manual"],
    )

    async def store_it() -> Indicator:
        async with open_store(node) as store:
            await store.upsert_indicators([indicator])
            stored = await store.get_indicator(indicator.id)
        assert stored is not None  # nosec B101  # written just above; narrows the type
        return stored

    stored = asyncio.run(store_it())
    if json_output:
        print_json(stored.to_json())
    else:
        stdout.print(
            f"stored {stored.type} {stored.value}  id {stored.id}  sightings {stored.sightings}"
        )


@app.command("list")
def list_(
    type_: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    tlp: Annotated[str | None, typer.Option("--tlp", help="Only this TLP.")] = None,
    min_confidence: Annotated[int | None, typer.Option("--min-confidence")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """List indicators, most recently changed first."""
    from dtim.service import open_store
    from dtim.store import IndicatorQuery

    node = open_home(home, sets)
    query = IndicatorQuery(
        type=type_,
        tlp=None if tlp is None else _tlp_name(tlp),
        min_confidence=min_confidence,
        limit=limit,
    )

    async def fetch() -> list[Indicator]:
        async with open_store(node) as store:
            return await store.list_indicators(query)

    found = asyncio.run(fetch())
    if json_output:
        print_json([item.to_json() for item in found])
        return
    table = Table(title=f"{len(found)} indicators")
    for column in ("type", "value", "confidence", "tlp", "sightings", "last seen", "tags"):
        table.add_column(column)
    for item in found:
        table.add_row(
            item.type,
            item.value,
            str(item.confidence),
            item.tlp.value,
            str(item.sightings),
            item.last_seen.strftime("%Y-%m-%d %H:%M"),
            ", ".join(item.tags),
        )
    stdout.print(table)


@app.command("show")
def show(
    ident: Annotated[str, typer.Argument(metavar="ID", help="Indicator id, or a value.")],
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Show one indicator by id or by value."""
    from dtim.service import open_store

    node = open_home(home, sets)

    async def fetch() -> Indicator | None:
        async with open_store(node) as store:
            found = await store.get_indicator(ident)
            if found is None:
                try:
                    kind = infer_type(ident).value
                    found = await store.find_indicator(kind, normalize(kind, ident))
                except DTIMError:
                    found = None
            return found

    found = asyncio.run(fetch())
    if found is None:
        raise DTIMError(f"no indicator {ident!r} in {node.root}")
    if json_output:
        print_json(found.to_json())
        return
    for key, value in found.to_json().items():
        stdout.print(f"{key:14} {value}")


VerdictArgument = Annotated[
    str, typer.Argument(metavar="VERDICT", help="false-positive, revoked or confirmed.")
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (kept on this node only).")]
PinOption = Annotated[
    int, typer.Option("--confidence", min=0, max=100, help="The confidence confirmed pins.")
]


@app.command("verdict")
def verdict(
    ident: Annotated[str, typer.Argument(metavar="ID", help="Indicator id, or a value.")],
    decision: VerdictArgument,
    reason: ReasonOption = "",
    confidence: PinOption = 100,
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Record an analyst's verdict; false-positive and revoked reach every peer (a tombstone)."""
    from dtim.service import verdict_command

    node = open_home(home, sets)
    done: Any = asyncio.run(
        verdict_command(node, ident, decision, reason=reason, confidence=confidence)
    )
    if json_output:
        print_json(done)
        return
    stdout.print(
        f"{done['verdict']}: {done['type']} {done['value']}  id {done['id']}"
        f"  confidence {done['confidence']}"
    )
    if done["tombstone"]:
        stdout.print(f"tombstone {done['tombstone'][:16]} for every peer until {done['expires']}")
    elif done["withheld"]:
        stdout.print(f"not sent to peers: {done['withheld']}")


def _tlp_name(raw: str) -> str:
    return Tlp.parse(raw, "--tlp").value
