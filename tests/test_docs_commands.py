"""Every ``dtim ...`` command line quoted in docs/*.md and README.md exists in the real CLI.

Command lines are taken from fenced code blocks and from inline code spans. Each
one must name an existing command path (``dtim indicators export``), and every
option it passes (``--format``) must be an option of that command; ``--help``
of the command must work. Placeholders (``ID``, ``URL``) are positional and
not checked.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from dtim.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`(dtim [^`]+)`")
_SHELL_END = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1", "#"}


def _invocation(line: str) -> str | None:
    """``dtim ...`` when the line runs dtim (``dtim``, ``/path/bin/dtim``, after sudo, VAR=x)."""
    line = line.strip().removeprefix("$ ")
    if line.startswith(("ExecStart=", "ExecStartPre=")):
        line = line.split("=", 1)[1]
    words = line.split()
    while words and (words[0] == "sudo" or re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0])):
        words = words[1:]
    if words and (words[0] == "dtim" or words[0].endswith("/dtim")):
        return " ".join(["dtim", *words[1:]])
    return None


def _lines(text: str) -> list[str]:
    found = [
        command
        for block in _FENCE.findall(text)
        for raw in block.splitlines()
        if (command := _invocation(raw)) is not None
    ]
    found.extend(_INLINE.findall(text))
    return found


def _commands() -> list[tuple[str, str]]:
    out = []
    for path in DOCS:
        for line in _lines(path.read_text(encoding="utf-8")):
            out.append((f"{path.relative_to(ROOT)}: {line}", line))
    return out


def _tokens(line: str) -> list[str]:
    try:
        words = shlex.split(line, comments=False)
    except ValueError:
        words = line.split()
    tokens = []
    for word in words[1:]:
        if word in _SHELL_END or word.startswith(("$(", ">", "2>")):
            break
        tokens.append(word.strip("[]"))
    return [t for t in tokens if t and t != "..."]


def _resolve(tokens: list[str]) -> tuple[Any, list[str], list[str]]:
    """The command the tokens name, its path, and the options passed to it."""
    command: Any = _root()
    path: list[str] = []
    options: list[str] = []
    for token in tokens:
        if token.startswith("-"):
            options.append(token.split("=", 1)[0])
            continue
        if hasattr(command, "commands"):
            choices = token.split("|")
            names = [c for c in choices if c in command.commands]
            assert names, f"no command `dtim {' '.join([*path, token])}`"
            if len(names) != len(choices):
                missing = set(choices) - set(names)
                raise AssertionError(f"`dtim {' '.join(path)}` has no {sorted(missing)}")
            path.append(names[0])
            command = command.commands[names[0]]
    return command, path, options


@pytest.mark.parametrize(("where", "line"), _commands(), ids=lambda v: v[:80])
def test_documented_command_exists(where: str, line: str) -> None:
    command, path, options = _resolve(_tokens(line))
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    known |= {"--help", "--version"}
    for option in options:
        assert option in known, f"{where}: `dtim {' '.join(path)}` has no option {option}"
    assert _help_works(tuple(path)), f"{where}: `dtim {' '.join(path)} --help` failed"


@functools.cache
def _root() -> Any:
    """The click command tree (Typer vendors click, so it is duck-typed here)."""
    return typer.main.get_command(app)


@functools.cache
def _help_works(path: tuple[str, ...]) -> bool:
    return CliRunner().invoke(app, [*path, "--help"]).exit_code == 0


def test_the_docs_quote_commands() -> None:
    assert len(_commands()) >= 20
