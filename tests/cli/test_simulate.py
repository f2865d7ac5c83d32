"""``dtim simulate``: JSON and table output, bad options."""

from __future__ import annotations

import json

import pytest
import typer

from dtim.cli.simulate import simulate
from dtim.errors import ValidationError

root = typer.Typer()
root.command("simulate")(simulate)
root.command("other")(lambda: None)


def run(*args: str) -> None:
    root(args=["simulate", *args], prog_name="dtim", standalone_mode=False)


def test_json_has_the_contract_fields(capsys: pytest.CaptureFixture[str]) -> None:
    run(
        "--nodes",
        "120",
        "--fanout",
        "3",
        "--degree",
        "8",
        "--loss",
        "0.05",
        "--seed",
        "4",
        "--json",
    )
    document = json.loads(capsys.readouterr().out)
    for key in (
        "nodes",
        "fanout",
        "degree",
        "loss",
        "rounds_to_50",
        "rounds_to_99",
        "rounds_to_100",
    ):
        assert key in document
    assert document["nodes"] == 120
    assert document["degree"] == 8
    assert document["loss"] == 0.05
    assert document["bytes_per_session"] > 0
    assert 0 <= document["origin_guess_rate"] <= 1
    assert document["rounds_to_100"] >= document["rounds_to_99"] >= document["rounds_to_50"]


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    run("--nodes", "60", "--naive")
    out = capsys.readouterr().out
    assert "rounds_to_99" in out
    assert "naive_origin_guess_rate" in out


@pytest.mark.parametrize("args", [("--loss", "1.5"), ("--runs", "0"), ("--fanout", "0")])
def test_bad_options(args: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError):
        run("--nodes", "20", *args)
