"""What every command shares: the node home, settings, output and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from dtim.config import LoadedSettings, NodeHome, load_settings, resolve_home
from dtim.errors import ConfigError

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", help="Node home (default: $DTIM_HOME, then ./dtim-home).", show_default=False
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document and nothing else.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a setting for this run: section.key=value (repeatable)."),
]
LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help='Standard error as "text" or "json" (one object per line); default: logging.format.',
        show_default=False,
    ),
]


def with_log_format(sets: list[str] | None, log_format: str | None) -> list[str]:
    """``--set`` options plus ``logging.format`` when ``--log-format`` was given."""
    return [*(sets or []), *([f"logging.format={log_format}"] if log_format is not None else [])]


stdout = Console(highlight=False, soft_wrap=True, markup=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def parse_sets(raw: list[str] | None) -> dict[str, str]:
    """Turn ``--set section.key=value`` options into a mapping.

    Raises:
        ConfigError: an option is not of that form.
    """
    pairs: dict[str, str] = {}
    for item in raw or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        pairs[key.strip()] = value
    return pairs


def open_home(
    home: Path | None, sets: list[str] | None = None, *, require: bool = True
) -> NodeHome:
    """Resolve the home, load its settings, print warnings; fail if it was never initialised.

    Raises:
        ConfigError: no home there (when ``require``), or a bad setting.
    """
    root = resolve_home(home)
    if require and not (root / "config" / "dtim.toml").exists():
        raise ConfigError(f"no DTIM node home at {root} (run `dtim init --home {root}` first)")
    loaded = load_settings(root, overrides=parse_sets(sets))
    report_warnings(loaded)
    return NodeHome(root=root, settings=loaded.settings)


def report_warnings(loaded: LoadedSettings) -> None:
    """Print config warnings (unknown keys ...) on stderr."""
    for warning in loaded.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}", markup=True)


def print_json(document: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()
