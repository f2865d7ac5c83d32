"""Column-wise screening of quiet lines: judge each distinct value once, not each line.

A batch of lines is cut into columns (one field per line, by cheap ``str``
operations); benign traffic repeats a handful of distinct requests, agents,
messages and timestamps, so each distinct value is judged once (and the
verdict remembered), and only lines holding a noisy value are looked at one
by one. The formats' screens live beside their parsers (``accessscreen``,
``errorscreen``); what they share is here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import contains

from dtim.watchers.base import Screened

_REMEMBERED = 50_000


class Verdicts:
    """Whether each distinct value of a column is quiet, remembered in bounded memory.

    Args:
        judge: True when a value is certainly quiet.
    """

    def __init__(self, judge: Callable[[str], bool]) -> None:
        self.judge = judge
        self._known: dict[str, bool] = {}

    def quiet(self, value: str) -> bool:
        """Whether one value is quiet (judged the first time it is seen)."""
        quiet = self._known.get(value)
        if quiet is None:
            quiet = self.judge(value)
            if len(self._known) >= _REMEMBERED:
                self._known.clear()
            self._known[value] = quiet
        return quiet

    def noisy(self, column: Sequence[str]) -> list[int]:
        """Positions in ``column`` of the values that are not quiet."""
        bad = {value for value in set(column) if not self.quiet(value)}
        return list(compress(range(len(column)), map(bad.__contains__, column))) if bad else []


def holds_newline(lines: Sequence[str]) -> bool:
    """Whether a line of the batch holds a newline of its own.

    Screens cut their columns out of the batch joined by newlines; such a line (the
    tail never hands one over, a caller of ``LineProcessor`` may) would shift every
    line after it. :func:`around_newlines` screens such a batch. Checked line by line:
    counting the joined text's newlines cost six times as much.
    """
    return any(map(contains, lines, repeat("\n")))


def around_newlines(screen: Callable[[Sequence[str]], Screened], lines: Sequence[str]) -> Screened:
    """``screen`` of the lines that hold no newline; the others are left to the parser."""
    kept: list[int] = []
    held: list[int] = []
    for k, line in enumerate(lines):
        (held if "\n" in line else kept).append(k)
    if not kept:
        return Screened(held, {})
    inner = screen([lines[k] for k in kept])
    return Screened(sorted([kept[k] for k in inner.noisy] + held), inner.quiet)


def unusual(lines: Sequence[str], text: str) -> set[int]:
    """Positions of lines holding a NUL byte or an escaped quote (``\\"``), which screens
    leave to the parser (the first is an error, the second needs the escape-aware regex);
    ``text`` is the lines joined by newlines."""
    marks = [mark for mark in ("\x00", '\\"') if mark in text]
    if not marks:
        return set()
    return {k for k, line in enumerate(lines) if any(mark in line for mark in marks)}
