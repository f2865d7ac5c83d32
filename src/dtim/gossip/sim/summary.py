"""Runs of the spread experiment, summed up as the JSON document ``dtim simulate`` prints."""

from __future__ import annotations

import statistics
from dataclasses import replace

from dtim.gossip.sim.spread import SpreadConfig, SpreadResult, run_spread
from dtim.model.indicator import JsonObject, JsonValue

WHAT_IS_REAL = (
    "Real: Report objects and ids, MergeState merges, Dandelion++ Router decisions "
    "and timers, range-based reconciliation sessions (the first few per distinct "
    "pair of sets run for real, later ones replay one of those transcripts: same "
    "pushes, same measured bytes), per-message loss. Modelled: synchronous rounds "
    "on a virtual clock, stem hops taking no time, an in-memory transport."
)


def _worst(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else max(v for v in values if v is not None)


def _per_run(result: SpreadResult) -> JsonObject:
    return {
        "rounds_to_50": result.rounds_to(0.5),
        "rounds_to_99": result.rounds_to(0.99),
        "rounds_to_100": result.rounds_to(1.0),
        "origin_guess_rate": round(result.neighbour_guess, 4),
        "stem_hops": result.stem_hops,
    }


def simulate(config: SpreadConfig, runs: int = 1, naive: bool = False) -> JsonObject:
    """Run ``runs`` experiments (seeds ``seed .. seed+runs-1``) and summarise them.

    Rounds-to figures are the worst over the runs (None when some run never
    got there within ``config.rounds``); guess rates and bytes are means.
    With ``naive``, the same seeds are run again without Dandelion++ and the
    naive guess rate is reported beside the real one.
    """
    results = [run_spread(replace(config, seed=config.seed + i)) for i in range(runs)]
    sessions = sum(r.sessions.sessions for r in results)
    document: JsonObject = {
        "nodes": config.nodes,
        "fanout": config.fanout,
        "degree": config.degree,
        "loss": config.loss,
        "max_rounds": config.rounds,
        "seed": config.seed,
        "runs": runs,
        "rounds_to_50": _worst([r.rounds_to(0.5) for r in results]),
        "rounds_to_99": _worst([r.rounds_to(0.99) for r in results]),
        "rounds_to_100": _worst([r.rounds_to(1.0) for r in results]),
        "bytes_per_session": round(sum(r.sessions.bytes for r in results) / max(1, sessions), 1),
        "bytes_per_differing_session": round(
            sum(r.sessions.busy_bytes for r in results)
            / max(1, sum(r.sessions.real + r.sessions.replayed for r in results)),
            1,
        ),
        "round_trips_per_session": round(
            sum(r.sessions.round_trips for r in results) / max(1, sessions), 3
        ),
        "origin_guess_rate": round(statistics.fmean(r.neighbour_guess for r in results), 4),
        "colluding_guess_rate": {
            f"{fraction:g}": round(
                statistics.fmean(r.colluding_guess[fraction] for r in results), 4
            )
            for fraction in config.colluding
        },
        "stem_hops": round(statistics.fmean(r.stem_hops for r in results), 2),
        "sessions": {
            "total": sessions,
            "real": sum(r.sessions.real for r in results),
            "replayed": sum(r.sessions.replayed for r in results),
            "idle": sum(r.sessions.idle for r in results),
        },
        "background_reports": config.background,
        "what_is_real": WHAT_IS_REAL,
    }
    if naive:
        baseline = [
            run_spread(replace(config, seed=config.seed + i, dandelion=False)) for i in range(runs)
        ]
        document["naive_origin_guess_rate"] = round(
            statistics.fmean(r.neighbour_guess for r in baseline), 4
        )
        document["naive_colluding_guess_rate"] = {
            f"{fraction:g}": round(
                statistics.fmean(r.colluding_guess[fraction] for r in baseline), 4
            )
            for fraction in config.colluding
        }
    if runs > 1:
        per_run: list[JsonValue] = [_per_run(r) for r in results]
        document["per_run"] = per_run
    return document
