"""``dtim sensor run`` (on a sensor host); ``dtim sensor token add|list|revoke`` (on the node)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from dtim.cli.common import HomeOption, JsonOption, SetOption, open_home, print_json, stdout
from dtim.config import NodeHome
from dtim.model import SystemClock

T = TypeVar("T")

app = typer.Typer(
    help="Remote sensors: watchers on other hosts feeding this node.", no_args_is_help=True
)
token_app = typer.Typer(help="Sensor tokens of this node.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command("run")
def run(
    node: Annotated[
        str,
        typer.Option("--node", help="The node's admin API, e.g. https://node.example.org:3031."),
    ],
    token: Annotated[
        str,
        typer.Option(
            "--token",
            envvar="DTIM_SENSOR_TOKEN",
            help="Sensor token from `dtim sensor token add` (or $DTIM_SENSOR_TOKEN).",
            show_default=False,
        ),
    ],
    ca: Annotated[
        Path | None,
        typer.Option("--ca", help="CA certificate to check the node with (default: system store)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds for every call to the node.")
    ] = 10.0,
    home: HomeOption = None,
    sets: SetOption = None,
) -> None:
    """Run the watchers configured in this home and submit their sightings to the node."""
    from dtim.sensor.runtime import run_sensor
    from dtim.service import watcher_config

    sensor_home = open_home(home, sets)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(
        run_sensor(
            watcher_config(sensor_home.settings),
            sensor_home.root,
            node_url=node,
            token=token,
            ca=ca,
            request_timeout=timeout,
        )
    )


def _with_store(home: NodeHome, work: Callable[..., Awaitable[T]], *args: object) -> T:
    from dtim.service import open_store

    async def go() -> T:
        async with open_store(home) as store:
            return await work(store, *args)

    return asyncio.run(go())


@token_app.command("add")
def token_add(
    name: Annotated[str, typer.Argument(help="A name for the sensor (e.g. dmz-web-1).")],
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Make a token for a new sensor; it is shown once, the node keeps only its hash."""
    from dtim.sensor.admin import add_sensor

    added = _with_store(open_home(home, sets), add_sensor, name, SystemClock().now())
    if json_output:
        print_json(added)
        return
    stdout.print(f"sensor {added['name']} ({added['id']})")
    stdout.print(f"token  {added['token']}")
    stdout.print("Keep the token secret; it is not shown again. On the sensor host run:")
    stdout.print(
        "  dtim sensor run --node https://<this node>:<admin port> --ca ca.crt "
        f"--token {added['token']}"
    )


@token_app.command("list")
def token_list(
    home: HomeOption = None, json_output: JsonOption = False, sets: SetOption = None
) -> None:
    """List this node's sensors (revoked ones included)."""
    from dtim.sensor.admin import list_sensors

    listed = _with_store(open_home(home, sets), list_sensors)
    if json_output:
        print_json(listed)
        return
    for sensor in listed:
        stdout.print(
            f"{sensor['name']:<24} {sensor['id']}  {sensor['status']:<8} "
            f"created {sensor['created_at']}  last used {sensor['last_used'] or 'never'}"
        )


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The sensor's name or id.")],
    home: HomeOption = None,
    json_output: JsonOption = False,
    sets: SetOption = None,
) -> None:
    """Revoke a sensor's token: its next request is refused."""
    from dtim.sensor.admin import revoke_sensor

    revoked = _with_store(open_home(home, sets), revoke_sensor, name, SystemClock().now())
    if json_output:
        print_json(revoked)
        return
    stdout.print(f"sensor {revoked['name']} revoked")
