"""``dtim simulate``: the gossip mesh in one process, on a virtual clock."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from dtim.cli.common import JsonOption, print_json, stdout
from dtim.errors import ValidationError


def simulate(
    nodes: Annotated[
        int, typer.Option("--nodes", help="Number of nodes (up to about 10,000).")
    ] = 1000,
    fanout: Annotated[
        int, typer.Option("--fanout", help="Peers each node reconciles with per round.")
    ] = 3,
    degree: Annotated[
        int | None, typer.Option("--degree", help="Neighbours per node (default: complete graph).")
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", help="Most rounds to simulate.")] = 40,
    loss: Annotated[
        float, typer.Option("--loss", help="Probability that any one message is lost.")
    ] = 0.0,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; runs use seed, seed+1, ...")
    ] = 1,
    runs: Annotated[int, typer.Option("--runs", help="Independent runs to aggregate.")] = 1,
    background: Annotated[
        int, typer.Option("--background", help="Reports every node already shares.")
    ] = 200,
    naive: Annotated[
        bool,
        typer.Option("--naive/--no-naive", help="Also run without Dandelion++ for comparison."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Simulate how one new report spreads: rounds to 50/99/100 %, bytes, origin guessing."""
    from dtim.gossip.sim.spread import SpreadConfig
    from dtim.gossip.sim.summary import simulate as run

    if not 0.0 <= loss < 1.0:
        raise ValidationError("--loss", f"must be in [0, 1), got {loss}")
    if runs < 1 or rounds < 1 or fanout < 1 or background < 0:
        raise ValidationError("options", "--runs, --rounds and --fanout must be positive")
    config = SpreadConfig(
        nodes=nodes,
        fanout=fanout,
        degree=degree,
        rounds=rounds,
        loss=loss,
        seed=seed,
        background=background,
    )
    document = run(config, runs=runs, naive=naive)
    if json_output:
        print_json(document)
        return
    table = Table(
        title=f"{nodes} nodes, fanout {fanout}, degree {degree or 'complete'}, loss {loss:g}"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in (
        "rounds_to_50",
        "rounds_to_99",
        "rounds_to_100",
        "bytes_per_session",
        "round_trips_per_session",
        "origin_guess_rate",
        "naive_origin_guess_rate",
        "stem_hops",
    ):
        if key in document:
            table.add_row(key, str(document[key]))
    stdout.print(table)
