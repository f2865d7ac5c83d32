"""The runner shares the event loop: a big batch is parsed in slices, with the same results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from dtim.watchers.base import MemorySink, WatcherContext, WatcherSpec
from dtim.watchers.runner import SLICE_LINES, WatcherRunner
from dtim.watchers.tail import FileTailer

LINES = 20 * SLICE_LINES


def bans(count: int) -> str:
    """fail2ban Ban lines for distinct public addresses: one sighting each."""
    return "".join(
        f"2026-11-27 10:00:00,000 fail2ban.actions [1]: NOTICE [sshd] Ban "
        f"45.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}\n"
        for n in range(count)
    )


async def test_a_big_batch_lets_other_tasks_run_and_loses_nothing(
    tmp_path: Path,
    specs: dict[str, WatcherSpec],
    make_context: Callable[..., WatcherContext],
) -> None:
    log = tmp_path / "fail2ban.log"
    log.write_text(bans(LINES), encoding="utf-8")
    tailer = FileTailer("fail2ban", str(log), start_at="beginning", batch_bytes=1 << 24)
    sink = MemorySink()
    runner = WatcherRunner(specs["fail2ban"].create(make_context()), [tailer], sink)
    ticks = 0

    async def other_task() -> None:  # a peer request waiting for its turn
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.ensure_future(other_task())
    try:
        await asyncio.sleep(0)
        before = ticks
        assert await runner.poll_once(max_batches=1) == LINES  # the whole file in one batch
        during = ticks - before
    finally:
        ticker.cancel()
        runner.close()
    assert during >= LINES // SLICE_LINES - 1
    assert len(sink.sightings) == LINES
    assert runner.stats.lines == LINES
    assert runner.stats.parse_errors == 0
    assert sink.commits == 1  # sightings and the position still committed together
