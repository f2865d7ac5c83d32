"""Tailer and runner: rotation, truncation, partial lines, restarts, missing paths, huge lines."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dtim.errors import WatcherError
from dtim.watchers.base import InputKind, MemorySink, WatcherContext, WatcherSpec
from dtim.watchers.directory import DirectoryFollower
from dtim.watchers.runner import WatcherRunner, sources_for
from dtim.watchers.tail import FileTailer


def ban(n: int) -> str:
    """One fail2ban Ban line for a distinct address: one sighting each."""
    address = f"45.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return f"2026-11-27 10:00:00,000 fail2ban.actions [1]: NOTICE [sshd] Ban {address}\n"


def write(path: Path, lines: list[str], mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as handle:
        handle.write("".join(lines))


def banned(sink: MemorySink) -> list[str]:
    return [s.indicator.value for s in sink.sightings]


@pytest.fixture
def runner_for(
    specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext]
) -> Iterator[Callable[..., WatcherRunner]]:
    made: list[WatcherRunner] = []

    def build(
        path: Path,
        sink: MemorySink,
        start_at: str = "end",
        max_line: int = 65536,
        batch_bytes: int = 1 << 20,
    ) -> WatcherRunner:
        watcher = specs["fail2ban"].create(make_context())
        tailer = FileTailer(
            "fail2ban", str(path), start_at=start_at, max_line=max_line, batch_bytes=batch_bytes
        )
        made.append(WatcherRunner(watcher, [tailer], sink, poll_interval=0))
        return made[-1]

    yield build
    for runner in made:
        runner.close()


async def test_start_at_end_skips_old_lines(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner]
) -> None:
    log = tmp_path / "f2b.log"
    write(log, [ban(1), ban(2)])
    sink = MemorySink()
    runner = runner_for(log, sink)
    await runner.poll_once()
    assert banned(sink) == []
    write(log, [ban(3)])
    await runner.poll_once()
    assert banned(sink) == ["45.0.0.3"]


async def test_start_at_beginning_reads_everything(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner]
) -> None:
    log = tmp_path / "f2b.log"
    write(log, [ban(1), ban(2)])
    sink = MemorySink()
    await runner_for(log, sink, "beginning").poll_once()
    assert banned(sink) == ["45.0.0.1", "45.0.0.2"]


async def test_partial_line_waits_for_its_newline(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner]
) -> None:
    log = tmp_path / "f2b.log"
    log.write_text("")
    sink = MemorySink()
    runner = runner_for(log, sink)
    await runner.poll_once()
    line = ban(9)
    write(log, [line[:30]])
    await runner.poll_once()
    assert banned(sink) == []
    assert runner.stats.parse_errors == 0
    write(log, [line[30:]])
    await runner.poll_once()
    assert banned(sink) == ["45.0.0.9"]


async def test_rename_rotation_finishes_the_old_file(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner]
) -> None:
    log = tmp_path / "f2b.log"
    log.write_text("")
    sink = MemorySink()
    runner = runner_for(log, sink)
    await runner.poll_once()
    write(log, [ban(1)])
    log.rename(tmp_path / "f2b.log.1")
    write(
        tmp_path / "f2b.log.1", [ban(2), ban(3).rstrip("\n")]
    )  # the writer still holds the old file; last line unterminated
    write(log, [ban(4)])
    await runner.poll_once()
    await runner.poll_once()
    assert banned(sink) == ["45.0.0.1", "45.0.0.2", "45.0.0.3", "45.0.0.4"]


async def test_copytruncate_starts_again_at_zero(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner]
) -> None:
    log = tmp_path / "f2b.log"
    log.write_text("")
    sink = MemorySink()
    runner = runner_for(log, sink)
    await runner.poll_once()
    write(log, [ban(1), ban(2)])
    await runner.poll_once()
    write(log, [ban(3)], mode="w")
    await runner.poll_once()
    assert banned(sink) == ["45.0.0.1", "45.0.0.2", "45.0.0.3"]


async def test_restart_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner]
) -> None:
    log = tmp_path / "f2b.log"
    log.write_text("")
    sink = MemorySink()
    first = runner_for(log, sink, batch_bytes=100)
    await first.poll_once()
    write(log, [ban(n) for n in range(1, 6)])
    await first.poll_once(max_batches=2)  # "killed" after two committed batches
    done = len(sink.sightings)
    assert 0 < done < 5
    write(log, [ban(n) for n in range(6, 9)])
    second = runner_for(log, sink, batch_bytes=100)
    await second.poll_once()
    assert banned(sink) == [f"45.0.0.{n}" for n in range(1, 9)]
    assert sink.positions[("fail2ban", str(log))].offset == log.stat().st_size


async def test_catch_up_reads_rotations_after_downtime(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner]
) -> None:
    log = tmp_path / "f2b.log"
    write(log, [ban(1)])
    sink = MemorySink()
    await runner_for(log, sink, "beginning").poll_once()
    # While the node is down: more lines, then two rotations (one compressed), then a fresh file.
    write(log, [ban(2)])
    os.utime(log, (1_000, 1_000))
    (tmp_path / "f2b.log.2.gz").write_bytes(gzip.compress(log.read_bytes()))
    os.utime(tmp_path / "f2b.log.2.gz", (1_000, 1_000))
    log.unlink()
    write(tmp_path / "f2b.log.1", [ban(3)])
    os.utime(tmp_path / "f2b.log.1", (2_000, 2_000))
    write(log, [ban(4)])
    await runner_for(log, sink).poll_once()
    assert banned(sink) == ["45.0.0.1", "45.0.0.2", "45.0.0.3", "45.0.0.4"]


async def test_missing_path_is_reported_once_then_read_when_it_appears(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner], caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "later.log"
    sink = MemorySink()
    runner = runner_for(log, sink)
    await runner.poll_once()
    await runner.poll_once()
    assert "missing" in runner.stats.problems[str(log)]
    assert sum("later.log" in r.getMessage() for r in caplog.records) == 1
    write(log, [ban(5)])
    await runner.poll_once()
    assert banned(sink) == ["45.0.0.5"]
    assert runner.stats.problems == {}


async def test_unreadable_path_is_reported(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner]
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    log = tmp_path / "secret.log"
    write(log, [ban(1)])
    log.chmod(0)
    runner = runner_for(log, MemorySink(), "beginning")
    await runner.poll_once()
    assert "unreadable" in runner.stats.problems[str(log)]


async def test_gigantic_and_binary_lines_are_counted_and_skipped(
    tmp_path: Path, runner_for: Callable[..., WatcherRunner]
) -> None:
    log = tmp_path / "f2b.log"
    sink = MemorySink()
    runner = runner_for(log, sink, "beginning", max_line=1024, batch_bytes=512)
    log.write_bytes(
        ban(1).encode()
        + b"x" * 10_000
        + b"\n"
        + b"\x00\x01binary\xff\n"
        + ban(2).encode()
        + b"y" * 3000
    )
    await runner.poll_once()
    assert banned(sink) == ["45.0.0.1", "45.0.0.2"]
    assert runner.stats.oversized == 2  # the 10 kB line, and the unterminated 3 kB one
    assert runner.stats.parse_errors == 1


async def test_directory_that_disappears_is_survived(
    tmp_path: Path, specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext]
) -> None:
    logs = tmp_path / "zeek"
    logs.mkdir()
    notice = '{"_path":"notice","ts":1764237600.0,"note":"Scan::Port_Scan","src":"45.9.20.%d"}\n'
    write(logs / "notice.log", [notice % 1])
    sink = MemorySink()
    follower = DirectoryFollower("zeek", str(logs), ("notice", "conn"), start_at="beginning")
    runner = WatcherRunner(specs["zeek"].create(make_context()), [follower], sink)
    await runner.poll_once()
    (logs / "notice.log").unlink()
    logs.rmdir()
    await runner.poll_once()
    assert "missing" in runner.stats.problems[str(logs)]
    logs.mkdir()
    write(logs / "notice.log", [notice % 2])
    await runner.poll_once()
    runner.close()
    assert banned(sink) == ["45.9.20.1", "45.9.20.2"]
    assert runner.stats.problems == {}


def test_sources_for_each_kind(tmp_path: Path) -> None:
    assert isinstance(sources_for("ufw", InputKind.FILE, str(tmp_path / "ufw.log"))[0], FileTailer)
    assert isinstance(sources_for("zeek", InputKind.DIRECTORY, str(tmp_path))[0], DirectoryFollower)
    with pytest.raises(WatcherError, match="DirectoryScanner"):
        sources_for("clamav", InputKind.SCAN, str(tmp_path))
