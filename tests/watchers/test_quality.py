"""Precision and recall on the labelled generator; private addresses never leave."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dtim.model import Scope
from dtim.watchers.base import Observation, WatcherContext, WatcherSpec
from dtim.watchers.runner import LineProcessor
from dtim.watchers.synthetic import SOURCES, START, Labelled, generate

MIN_PRECISION = 0.95
MIN_RECALL = 0.9


@pytest.mark.parametrize("source", SOURCES)
def test_precision_and_recall(
    source: str, specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext]
) -> None:
    truth = Labelled(source)
    lines = list(generate(source, 6000, seed=11, truth=truth))
    watcher = specs[source].create(make_context(now=START.replace(day=START.day + 1)))
    processor = LineProcessor(watcher)
    found = processor.lines("generated.log", lines, 1) + list(watcher.flush())
    shared = {
        s.indicator.value for s in found if s.indicator.scope is not Scope.LOCAL
    } - truth.partial
    hits = shared & truth.attackers
    assert truth.attackers, "the generator made no attacker"
    assert processor.stats.parse_errors == 0, processor.stats.last_error
    assert len(hits) / len(shared) >= MIN_PRECISION, sorted(shared - truth.attackers)[:10]
    assert len(hits) / len(truth.attackers) >= MIN_RECALL, sorted(truth.attackers - shared)[:10]


def test_private_addresses_never_leave(
    specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext]
) -> None:
    lines = list(generate("nginx_access", 3000, seed=3))
    lines += [
        f'10.0.0.7 - - [02/Mar/2026:09:00:{i:02d} +0000] "GET /.env HTTP/1.1" 404 1 "-" "sqlmap"'
        for i in range(5)
    ]
    watcher = specs["nginx_access"].create(make_context(own=["81.2.69.0/24"]))
    lines += [
        f'81.2.69.160 - - [02/Mar/2026:09:01:{i:02d} +0000] "GET /.git/config HTTP/1.1" 404 1'
        for i in range(5)
    ]
    found = LineProcessor(watcher).lines("x.log", lines, 1)
    local = {s.indicator.value for s in found if s.indicator.scope is Scope.LOCAL}
    assert {"10.0.0.7", "81.2.69.160"} <= local
    assert not [
        s for s in found if s.indicator.value in local and s.indicator.scope is not Scope.LOCAL
    ]


@pytest.mark.parametrize("source", ["nginx_access", "apache_access"])
def test_quiet_line_screen_changes_no_detection(
    source: str, specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext]
) -> None:
    lines = list(generate(source, 5000, seed=5))
    screened = LineProcessor(specs[source].create(make_context())).lines("a.log", lines, 1)
    watcher = specs[source].create(make_context())
    parser = watcher.parser_for("b.log")
    plain = [
        s for line in lines for s in watcher.detect(parser.parse(line) or Observation("x", 0, ""))
    ]
    assert [(s.rule, s.indicator.value, s.count) for s in screened] == [
        (s.rule, s.indicator.value, s.count) for s in plain
    ]
