"""``dtim config``: show the effective configuration."""

from __future__ import annotations

import typer

from dtim.cli.common import HomeOption, JsonOption, SetOption, open_home, print_json, stdout
from dtim.config import describe_settings
from dtim.config.template import render_toml_value

app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


@app.command("show")
def show(home: HomeOption = None, json_output: JsonOption = False, sets: SetOption = None) -> None:
    """Print the effective settings (file, environment and --set applied; secrets masked)."""
    node = open_home(home, sets)
    described = describe_settings(node.settings)
    if json_output:
        print_json(described)
        return
    for section, table in described.items():
        stdout.print(f"[{section}]", markup=False)
        for key, value in table.items():
            stdout.print(f"{key} = {render_toml_value(value)}", markup=False)
        stdout.print("")


@app.command("docs")
def docs() -> None:
    """Print the configuration reference (docs/configuration.md) as Markdown."""
    from dtim.config.template import render_markdown

    print(render_markdown(), end="")  # plain Markdown to stdout
