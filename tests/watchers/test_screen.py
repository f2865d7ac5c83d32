"""Quiet-line screens: a screened batch gives exactly what parsing every line gives."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from dtim.model import Sighting
from dtim.watchers.base import WatcherContext, WatcherSpec
from dtim.watchers.runner import LineProcessor
from dtim.watchers.synthetic import START, generate
from tests.watchers.corpus import SAMPLES, load

SCREENED = ("nginx_access", "apache_access", "nginx_error", "apache_error")
# Edits that make a benign line odd, malformed or hostile in the places screens look at.
EDITS: tuple[Callable[[str], str], ...] = (
    lambda line: line.replace('" 200 ', '" 404 ', 1),
    lambda line: line.replace('" 200 ', '" ٢٠٠ ', 1),
    lambda line: line.replace("GET /", "POST /", 1),
    lambda line: line.replace("GET /", "GET /.env?", 1),
    lambda line: line.replace('"-"', '"${jndi:ldap://x/a}"', 1),
    lambda line: line.replace('HTTP/1.1"', 'HTTP/1.1\\" x"', 1),
    lambda line: line.replace(" - - ", " - [x ", 1),
    lambda line: "h[ost " + line,
    lambda line: "vhost.example " + line,
    lambda line: "vhost.example " + line.replace(" - - ", " - [u ", 1),
    lambda line: "vhost.example " + line.replace(" - - ", " - - extra ", 1),
    lambda line: line.replace(" - - ", " i[d - ", 1),
    lambda line: line.replace(" - - [", " - - [[", 1),
    lambda line: line.replace('] "', ']] "', 1),
    lambda line: " " + line,
    lambda line: line.replace(" ", "\t", 1),
    lambda line: line + ' "extra"',
    lambda line: line[:-1],
    lambda line: line[: len(line) // 2],
    lambda line: line.replace(":00 ", ":61 ", 1),
    lambda line: line.replace("Mar", "Mrz", 1),
    lambda line: line.replace(":00 +", ":00.5 +", 1),  # a time of another width
    lambda line: line.replace(" +0000]", " +000]", 1),
    lambda line: line.replace(".", "\x01", 1),  # control characters in the first token
    lambda line: line.replace(".", "\x7f", 1),
    lambda line: line.replace(".", "\u200b", 1),  # printable to no one, and not ASCII
    lambda line: line.replace(" - - ", " \x02 - ", 1),
    lambda line: line.replace(" +0000]", " +00x0]", 1),
    lambda line: line.replace("/Mar/", "/Mar]/", 1),
    lambda line: line.replace(":00 +0000", ":0\u0660 +0000", 1),  # a digit int() reads
    lambda line: line.replace("/Mar/2026", "/Feb/2026", 1).replace("[0", "[3", 1),
    lambda line: line.replace("a", "\x00", 1),
    lambda line: line.replace("upstream timed out", "access forbidden by rule", 1),
    lambda line: line.replace(", client: ", ", client: , client: ", 1),
    lambda line: line.replace(", client: ", ", server: ", 1),
    lambda line: line.replace(", client: ", ", client:  ", 1),
    lambda line: line.replace(": *", ": ", 1),
    lambda line: line.replace(": *", ": **", 1),
    lambda line: line.replace("Cannot serve directory", "client denied by server configuration", 1),
    lambda line: line.replace("[client ", "[client [::1]:80 x] [client ", 1),
    lambda line: line.replace("[client ", "[client ]", 1),
    lambda line: line.replace(".050000", ".x", 1),
    lambda line: line.replace("] [pid", "] [client 1.2.3.4] [pid", 1),
    lambda line: line.replace("] AH", "] [client 9.9.9.9] AH", 1),
    lambda line: line.replace("", "", 1) + ", client: 1.2.3.4",
    # The parser reads the message up to the last ", client: ", a first cut up to the first.
    lambda line: line.replace(
        ", client: ", ', client: 9.9.9.9 user "a": password mismatch, client: ', 1
    ),
    lambda line: line + ", client: ",
    lambda line: line.replace(", client: ", ", client: \t", 1),
    # The tail splits on newlines, but a caller of LineProcessor may hand one over: screens
    # join a batch with newlines and split it back, which shifted every later line.
    lambda line: line.replace(" ", "\n", 1),
    lambda line: "\n" + line,
)


def corpus_lines(source: str) -> list[str]:
    return [
        sample.line
        for path in sorted((SAMPLES / source).glob("*.log"))
        for sample in load(path).samples
    ]


def hostile(source: str, count: int, seed: int, rate: float) -> list[str]:
    rng = random.Random(seed)
    lines = list(generate(source, count, seed=seed, start=START))
    return [rng.choice(EDITS)(line) if rng.random() < rate else line for line in lines]


def run(
    spec: WatcherSpec, context: WatcherContext, lines: list[str], *, screen: bool
) -> tuple[dict[str, object], list[tuple[str, str, int, tuple[str, ...]]]]:
    processor = LineProcessor(spec.create(context), screen=screen)
    found: list[Sighting] = []
    for start in range(0, len(lines), 700):
        found += processor.lines("a.log", lines[start : start + 700], start + 1)
    stats = processor.stats.to_json()
    stats.pop("last_error")
    return stats, [(s.rule, s.indicator.value, s.count, s.evidence.lines) for s in found]


@pytest.mark.parametrize("source", SCREENED)
@pytest.mark.parametrize(("seed", "rate"), [(1, 0.3), (2, 0.01)])
def test_screened_batches_match_parsing_every_line(
    source: str,
    seed: int,
    rate: float,
    specs: dict[str, WatcherSpec],
    make_context: Callable[..., WatcherContext],
) -> None:
    lines = corpus_lines(source) + hostile(source, 4000, seed, rate)
    screened = run(specs[source], make_context(), lines, screen=True)
    assert screened == run(specs[source], make_context(), lines, screen=False)
    assert screened[0]["observations"], "nothing was understood"


@pytest.mark.parametrize("edit", range(len(EDITS)))
@pytest.mark.parametrize("source", SCREENED)
def test_each_edit_alone_in_otherwise_benign_batches(
    source: str,
    edit: int,
    specs: dict[str, WatcherSpec],
    make_context: Callable[..., WatcherContext],
) -> None:
    # Mixed edits mostly push a whole batch off a screen's fast path; one kind of edit at
    # a time, a few lines per batch, keeps the rest of the batch on it.
    lines = list(generate(source, 700, seed=edit, start=START))
    lines = [EDITS[edit](line) if k % 97 == 5 else line for k, line in enumerate(lines)]
    screened = run(specs[source], make_context(), lines, screen=True)
    assert screened == run(specs[source], make_context(), lines, screen=False)


@pytest.mark.parametrize("source", SCREENED)
def test_a_batch_of_lines_all_holding_newlines_goes_to_the_parser(
    source: str, specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext]
) -> None:
    lines = ["\n".join(generate(source, 3, seed=k, start=START)) for k in range(4)]
    screened = run(specs[source], make_context(), lines, screen=True)
    assert screened == run(specs[source], make_context(), lines, screen=False)
    assert screened[0]["lines"] == 4


@pytest.mark.parametrize("source", SCREENED)
def test_benign_traffic_is_mostly_screened(
    source: str, specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext]
) -> None:
    watcher = specs[source].create(make_context())
    lines = hostile(source, 2000, 3, 0.01)
    assert len(watcher.screen(lines).noisy) < len(lines) / 4  # type: ignore[attr-defined]  # a QuietScreen
    # Untouched batches take the screens' fastest paths (plain heads, one client a line).
    clean = list(generate(source, 2000, seed=3, start=START))
    assert len(watcher.screen(clean).noisy) < len(clean) / 4  # type: ignore[attr-defined]  # a QuietScreen
