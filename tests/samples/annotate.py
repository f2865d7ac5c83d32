"""Write an annotated corpus from raw log lines, with the expectations the detector gives today.

    python -m tests.samples.annotate WATCHER RAW OUT [--settings JSON] [--own CIDR,...] [--now ISO]

Every expectation it writes must then be reviewed by a person against the
source's own ground truth (fail2ban's ``# failJSON:`` lines are kept as
comments next to them for that): this tool records behaviour, it does not
decide what is right.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from dtim.errors import ParseError
from dtim.model import FakeClock
from dtim.watchers.base import WatcherContext, parse_networks
from dtim.watchers.plugins import make_plugin_manager, registered_watchers
from tests.watchers.corpus import describe


def main() -> None:
    """Annotate RAW_FILE into OUT_FILE."""
    parser = argparse.ArgumentParser()
    parser.add_argument("watcher")
    parser.add_argument("raw", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--settings", default="{}")
    parser.add_argument("--own", default="")
    parser.add_argument("--now", default="2026-11-28T00:00:00+00:00")
    args = parser.parse_args()
    spec = registered_watchers(make_plugin_manager(load_entrypoints=False))[args.watcher]
    own = [c for c in args.own.split(",") if c]
    settings = json.loads(args.settings)
    now = datetime.fromisoformat(args.now)
    watcher = spec.create(
        WatcherContext(
            settings=settings, own_networks=parse_networks(own), clock=FakeClock(now), timezone=UTC
        )
    )
    line_parser = watcher.parser_for(str(args.raw))
    out: list[str] = []
    if settings:
        out.append(f"# settings: {json.dumps(settings)}")
    if own:
        out.append(f"# own_networks: {json.dumps(own)}")
    out.append(f"# now: {now.isoformat()}")
    for raw in args.raw.read_text(encoding="utf-8", errors="replace").split("\n"):
        if raw.startswith("# ") or raw == "#":
            out.append(raw)
            continue
        if not raw.strip():
            continue
        try:
            observation = line_parser.parse(raw)
            found = list(watcher.detect(observation)) if observation is not None else []
        except ParseError:
            out.append("# expect: error")
            out.append(raw)
            continue
        expect = json.dumps([describe(s) for s in found]) if found else "none"
        out.append(f"# expect: {expect}")
        out.append(raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
