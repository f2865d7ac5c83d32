"""``dtim privacy check``: what would leave this node for a destination, and why.

Mount on the root app::

    app.add_typer(privacy.app, name="privacy")

It needs no node home: without one (or without ``config/dtim.toml`` in it) it
uses the default policy, and ``--own-network``/``--own-domain``/``--org-name``
add to whatever the home's ``[privacy]`` section says.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from dtim.cli.common import HomeOption, JsonOption, print_json, stdout
from dtim.config import NodeHome, config_path, load_settings, resolve_home
from dtim.errors import ValidationError
from dtim.model import Indicator, SystemClock, make_indicator
from dtim.model.clock import iso
from dtim.model.indicator import indicator_from_json
from dtim.privacy import (
    Destination,
    Explanation,
    FieldDecision,
    PrivacyFilter,
    PrivacyLevel,
    PrivacyPolicy,
    Warninglist,
    load_warninglist_file,
    policy_from_mapping,
)

EXAMPLE_PEER = "approved-peer"
"""The peer ``--to`` defaults to: any approved peer with no special standing."""

app = typer.Typer(
    name="privacy",
    help="See what the privacy filter lets leave this node, and why.",
    no_args_is_help=True,
)


def settings_policy(home: Path | None) -> tuple[PrivacyPolicy, tuple[Warninglist, ...]]:
    """Settings hook: the home's ``[privacy]`` policy and extra list files, else defaults.

    This is the one place the CLI turns settings into privacy objects;
    ``service.py`` does the same for the node.

    Raises:
        ConfigError: the home's config or a listed warninglist file is wrong.
    """
    root = resolve_home(home)
    if not config_path(root).exists():
        return PrivacyPolicy(), ()
    settings = load_settings(root).settings
    node = NodeHome(root=root, settings=settings)
    lists = tuple(load_warninglist_file(node.path(name)) for name in settings.privacy.warninglists)
    return policy_from_mapping(asdict(settings.privacy)), lists


def read_indicators(
    target: str,
    *,
    tlp: str,
    scope: str,
    recipients: list[str],
    tags: list[str],
) -> list[Indicator]:
    """The indicators named by ``target``: a value, or a file of them.

    A file holds a JSON array (of indicator objects or values), JSON lines, or
    one value per line (``#`` starts a comment). Bare values get ``tlp``,
    ``scope``, ``recipients`` and ``tags``.

    Raises:
        ValidationError: naming the file and line of the first bad entry.
    """
    now = SystemClock().now()
    path = Path(target)

    def build(item: object, where: str) -> Indicator:
        try:
            if isinstance(item, dict):
                data = dict(item)
                data.setdefault("created", data.get("first_seen") or iso(now))
                return indicator_from_json(data)
            if isinstance(item, str):
                return make_indicator(
                    item, now=now, tlp=tlp, scope=scope, recipients=recipients, tags=tags
                )
        except ValidationError as exc:
            raise ValidationError(where, f"{exc.field}: {exc.reason}") from exc
        raise ValidationError(where, "expected an indicator object or a value")

    if not path.is_file():
        return [build(target, "value")]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(str(path), f"cannot read: {exc}") from exc
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path}:{exc.lineno}", f"invalid JSON: {exc.msg}") from exc
        return [build(item, f"{path}: item {number}") for number, item in enumerate(items, 1)]
    out: list[Indicator] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        item: object = line
        if line.startswith("{"):
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{path}:{number}", f"invalid JSON: {exc.msg}") from exc
        out.append(build(item, f"{path}:{number}"))
    return out


@app.command("check")
def check(
    target: Annotated[
        str,
        typer.Argument(
            help="An indicator value, or a file: JSON array, JSON lines, or one value per line."
        ),
    ],
    level: Annotated[
        str | None,
        typer.Option("--level", help="strict, moderate or open (default: the node's level)."),
    ] = None,
    to: Annotated[
        str,
        typer.Option("--to", help="A peer id, group:NAME, consumer:NAME or public."),
    ] = EXAMPLE_PEER,
    peer_group: Annotated[
        list[str] | None, typer.Option("--peer-group", help="A group the --to peer is in.")
    ] = None,
    tlp: Annotated[str, typer.Option("--tlp", help="TLP of bare values.")] = "green",
    scope: Annotated[str, typer.Option("--scope", help="Scope of bare values.")] = "private",
    recipient: Annotated[
        list[str] | None, typer.Option("--recipient", help="Recipient of bare values.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag of bare values.")] = None,
    own_network: Annotated[
        list[str] | None, typer.Option("--own-network", help="Add an own network (CIDR).")
    ] = None,
    own_domain: Annotated[
        list[str] | None, typer.Option("--own-domain", help="Add an own domain.")
    ] = None,
    org_name: Annotated[
        list[str] | None, typer.Option("--org-name", help="Add an organisation name.")
    ] = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show what would leave for a destination, field by field, and any warninglist hit."""
    policy, lists = settings_policy(home)
    policy = replace(
        policy,
        own_networks=(*policy.own_networks, *(own_network or ())),
        own_domains=(*policy.own_domains, *(own_domain or ())),
        org_names=(*policy.org_names, *(org_name or ())),
    )
    override = None if level is None else PrivacyLevel.parse(level, key="--level")
    destination = Destination.parse(to, peer_group or (), level=override)
    privacy = PrivacyFilter(policy, extra_lists=lists)
    indicators = read_indicators(
        target, tlp=tlp, scope=scope, recipients=recipient or [], tags=tag or []
    )
    explanations = [privacy.explain(indicator, destination) for indicator in indicators]
    if json_output:
        print_json({"results": [item.to_json() for item in explanations]})
    elif len(explanations) == 1:
        render_one(explanations[0])
    else:
        render_many(explanations)


def _verdict(item: Explanation) -> Text:
    if item.shared:
        return Text("leaves", style="green")
    reason = item.reason.value if item.reason is not None else "withheld"
    return Text(f"withheld ({reason})", style="red")


def render_one(item: Explanation) -> None:
    """Every field of one indicator, kept or dropped, and why."""
    indicator = item.indicator
    stdout.print(
        Text.assemble(
            f"{indicator.value} ({indicator.type}) to {item.destination} at level "
            f"{item.level.value}: ",
            _verdict(item),
        )
    )
    if item.detail:
        stdout.print(f"  why: {item.detail}", markup=False)
    if item.warninglist is not None:
        hit = item.warninglist
        stdout.print(
            f"  warninglist: {hit.list_name} ({hit.entry}): {hit.description}", markup=False
        )
    table = Table("field", "leaves", "why", "value")
    for row in (
        *item.fields,
        *_prefixed("tag", item.tags),
        *_prefixed("custom", item.custom_fields),
    ):
        table.add_row(
            row.name, "yes" if row.kept else "no", row.reason, json.dumps(row.value, default=str)
        )
    stdout.print(table)
    if item.output is not None:
        stdout.print("sent as:", json.dumps(item.output, sort_keys=True), markup=False)


def _prefixed(kind: str, rows: tuple[FieldDecision, ...]) -> list[FieldDecision]:
    return [FieldDecision(f"{kind} {row.name}", row.kept, row.reason, row.value) for row in rows]


def render_many(items: list[Explanation]) -> None:
    """One line per indicator."""
    table = Table("value", "type", "verdict", "why", "warninglist")
    for item in items:
        hit = item.warninglist
        table.add_row(
            item.indicator.value,
            item.indicator.type,
            _verdict(item),
            item.detail,
            "" if hit is None else f"{hit.list_name} ({hit.entry})",
        )
    stdout.print(table)
