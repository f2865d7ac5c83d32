"""Reading annotated sample logs: ``# expect: ...`` before every line, directives at the top.

Format of ``tests/samples/<watcher>/*.log``::

    # settings: {"http-404-flood": {"threshold": 1}}     optional, the [watchers.<name>] table
    # own_networks: ["147.32.84.0/24"]                   optional
    # now: 2026-11-28T00:00:00Z                          optional reference for syslog years
    # expect: none                                       the next line yields no sighting
    <line>
    # expect: {"rule": "http-sqli", "value": "1.2.3.4"}  ... yields these sightings (subset match)
    <line>
    # expect: error                                      ... raises ParseError (counted, skipped)
    <line>

Any other line starting with ``# `` (hash, space) is a comment (fail2ban's
``# failJSON:`` ground truth is kept that way); data lines may start with
``#`` followed by something else (Zeek's ``#fields`` headers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@dataclass
class Sample:
    """One annotated line."""

    number: int
    line: str
    expect: Any  # "none" | "error" | list of dicts


@dataclass
class Corpus:
    """One annotated file."""

    path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    own_networks: list[str] = field(default_factory=list)
    now: datetime = datetime(2026, 11, 28, tzinfo=UTC)
    samples: list[Sample] = field(default_factory=list)


def load(path: Path) -> Corpus:
    """Parse an annotated file; raises ValueError on a line without an expectation."""
    corpus = Corpus(path)
    pending: Any = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if raw == "" and pending is None:
            continue
        if raw.startswith("# settings:"):
            corpus.settings = json.loads(raw.split(":", 1)[1])
        elif raw.startswith("# own_networks:"):
            corpus.own_networks = json.loads(raw.split(":", 1)[1])
        elif raw.startswith("# now:"):
            corpus.now = datetime.fromisoformat(raw.split(":", 1)[1].strip().replace("Z", "+00:00"))
        elif raw.startswith("# expect:"):
            text = raw.split(":", 1)[1].strip()
            if text in ("none", "error"):
                pending = text
            else:
                value = json.loads(text)
                pending = value if isinstance(value, list) else [value]
        elif raw.startswith("# ") or raw == "#":
            continue
        else:
            if pending is None:
                raise ValueError(f"{path}:{number}: line without a preceding '# expect:'")
            corpus.samples.append(Sample(number, raw, pending))
            pending = None
    return corpus


def matches(expected: dict[str, Any], sighting: Any) -> bool:
    """Subset match of one expectation against one Sighting."""
    indicator = sighting.indicator
    actual = {
        "rule": sighting.rule,
        "value": indicator.value,
        "type": indicator.type,
        "scope": indicator.scope.value,
        "count": sighting.count,
        "confidence": indicator.confidence,
    }
    for key, value in expected.items():
        if key == "tags":
            if not set(value) <= set(indicator.tags):
                return False
        elif actual.get(key) != value:
            return False
    return True


def describe(sighting: Any) -> dict[str, Any]:
    """The expectation that matches a sighting (used to write corpora)."""
    indicator = sighting.indicator
    return {
        "rule": sighting.rule,
        "value": indicator.value,
        "scope": indicator.scope.value,
        "count": sighting.count,
    }
