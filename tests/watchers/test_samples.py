"""Annotated corpora: one test per sample file; every rule and pattern must be hit by a sample."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from dtim.errors import ParseError
from dtim.model import FakeClock
from dtim.watchers.base import WatcherContext, WatcherSpec, parse_networks
from dtim.watchers.plugins import make_plugin_manager, registered_watchers
from tests.watchers.corpus import SAMPLES, Corpus, describe, load, matches

FILES = sorted(SAMPLES.glob("*/*.log"))


def evaluate(spec: WatcherSpec, corpus: Corpus) -> tuple[list[str], set[str], set[str]]:
    """Run a corpus; return mismatches, the rules that fired and the patterns seen."""
    context = WatcherContext(
        settings=corpus.settings,
        own_networks=parse_networks(corpus.own_networks),
        clock=FakeClock(corpus.now),
        timezone=UTC,
    )
    watcher = spec.create(context)
    parser = watcher.parser_for(str(corpus.path))
    problems: list[str] = []
    rules: set[str] = set()
    patterns: set[str] = set()
    for sample in corpus.samples:
        where = f"{corpus.path.name}:{sample.number}"
        try:
            observation = parser.parse(sample.line)
            found = list(watcher.detect(observation)) if observation is not None else []
        except ParseError as exc:
            if sample.expect != "error":
                problems.append(f"{where}: unexpected ParseError {exc}")
            continue
        if observation is not None:
            patterns.add(observation.pattern)
        rules.update(s.rule for s in found)
        if sample.expect == "error":
            problems.append(f"{where}: expected a ParseError, got {[describe(s) for s in found]}")
        elif sample.expect == "none":
            if found:
                problems.append(f"{where}: expected nothing, got {[describe(s) for s in found]}")
        else:
            wanted: list[dict[str, Any]] = sample.expect
            unmatched = list(found)
            for expected in wanted:
                hit = next((s for s in unmatched if matches(expected, s)), None)
                if hit is None:
                    problems.append(
                        f"{where}: expected {expected}, got {[describe(s) for s in found]}"
                    )
                else:
                    unmatched.remove(hit)
            if unmatched:
                problems.append(f"{where}: unexpected {[describe(s) for s in unmatched]}")
    return problems, rules, patterns


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_file(path: Path, specs: dict[str, WatcherSpec]) -> None:
    problems, _, _ = evaluate(specs[path.parent.name], load(path))
    assert not problems, "\n".join(problems)


def test_every_watcher_has_samples(specs: dict[str, WatcherSpec]) -> None:
    assert {p.parent.name for p in FILES} == set(specs)


@pytest.mark.parametrize(
    "name", sorted(registered_watchers(make_plugin_manager(load_entrypoints=False)))
)
def test_every_rule_and_pattern_is_hit(name: str, specs: dict[str, WatcherSpec]) -> None:
    spec = specs[name]
    rules: set[str] = set()
    patterns: set[str] = set()
    for path in FILES:
        if path.parent.name == name:
            _, fired, seen = evaluate(spec, load(path))
            rules |= fired
            patterns |= seen
    assert {r.name for r in spec.rules} - rules == set(), "rules without a sample that fires them"
    assert set(spec.patterns) - patterns == set(), "line patterns without a sample"
