"""ClamAV for real: Debian's clamscan and clamd, with a signature database written by the test.

freshclam needs the internet, so the database is ours: an MD5 signature (``.hdb``) for the
EICAR test file and a body signature (``.ndb``) for a marker inside a larger file. ``make test``
installs Debian's ``clamav`` and ``clamav-daemon`` when it runs as root; elsewhere these tests
skip, saying what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from dtim.cli.ingest import run_ingest
from dtim.demo.generator import EICAR, signature_database
from dtim.errors import WatcherError
from dtim.model import Scope, Sighting
from dtim.service import spawn
from dtim.watchers import clamscan as clamscan_module
from dtim.watchers.base import MemorySink, WatcherContext, WatcherSpec
from dtim.watchers.clamav import ClamavWatcher
from dtim.watchers.clamscan import ClamdEngine, ClamscanEngine, DirectoryScanner, choose_engine
from dtim.watchers.supervisor import ScanRunner

EICAR_SIGNATURE = "Eicar-Test-Signature"
MARKER = b"DTIM-REAL-CLAMAV-BODY-MARKER"
MARKER_SIGNATURE = "Dtim.Test.BodyMarker"
CLAMD_START_SECONDS = 30.0

CLAMSCAN = shutil.which("clamscan")
CLAMD = shutil.which("clamd") or shutil.which("clamd", path="/usr/sbin:/usr/local/sbin")
needs_clamscan = pytest.mark.skipif(
    CLAMSCAN is None,
    reason="clamscan is not installed (Debian package clamav; `make test` installs it as root)",
)
needs_clamd = pytest.mark.skipif(
    CLAMD is None,
    reason="clamd is not installed (Debian package clamav-daemon; `make test` installs it as root)",
)
EICAR_BYTES = EICAR.encode()
MARKED_BYTES = b"%PDF-1.4 quarterly figures\n" + MARKER + b"\n%%EOF\n"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A directory holding our two signatures, as freshclam would hold the official ones."""
    directory = tmp_path / "db"
    signature_database(directory, EICAR_SIGNATURE)
    (directory / "dtim-test.ndb").write_text(f"{MARKER_SIGNATURE}:0:*:{MARKER.hex()}\n")
    return directory


def fill(directory: Path, files: dict[str, bytes], age: float = 10.0) -> None:
    """Write files that look settled (modified ``age`` seconds ago)."""
    directory.mkdir(parents=True, exist_ok=True)
    when = time.time() - age
    for name, data in files.items():
        (directory / name).write_bytes(data)
        os.utime(directory / name, (when, when))


def digests(data: bytes) -> set[tuple[str, str]]:
    return {
        ("sha256", hashlib.sha256(data).hexdigest()),
        ("sha1", hashlib.sha1(data).hexdigest()),
        ("md5", hashlib.md5(data).hexdigest()),
    }


def check_sightings(found: list[Sighting]) -> None:
    """Three digests of each infected file, tagged with ClamAV's signature name; clean: none."""
    by_value = {(s.indicator.type, s.indicator.value): s for s in found}
    assert len(found) == 6
    assert set(by_value) == digests(EICAR_BYTES) | digests(MARKED_BYTES)
    for kind, value in digests(EICAR_BYTES):
        indicator = by_value[(kind, value)].indicator
        # ClamAV adds .UNOFFICIAL to our own signatures; a test signature never leaves the node
        assert "eicar-test-signature" in indicator.tags
        assert "test-file" in indicator.tags
        assert indicator.scope is Scope.LOCAL
    for kind, value in digests(MARKED_BYTES):
        indicator = by_value[(kind, value)].indicator
        assert "dtim.test.bodymarker" in indicator.tags
        assert "malware" in indicator.tags
        assert indicator.scope is Scope.PRIVATE


def clamav_watcher(
    specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext], **options: str
) -> ClamavWatcher:
    watcher = specs["clamav"].create(make_context(options))
    assert isinstance(watcher, ClamavWatcher)
    return watcher


@needs_clamscan
async def test_clamscan_with_our_database_finds_infected_files_only(
    tmp_path: Path,
    database: Path,
    specs: dict[str, WatcherSpec],
    make_context: Callable[..., WatcherContext],
) -> None:
    scan_dir = tmp_path / "incoming"
    fill(scan_dir, {"eicar.com": EICAR_BYTES, "report.pdf": MARKED_BYTES, "notes.txt": b"hello"})
    watcher = clamav_watcher(
        specs,
        make_context,
        clamd_socket=str(tmp_path / "no-clamd.ctl"),
        database=str(database),
    )
    engine = await choose_engine(watcher.clamd_socket, watcher.clamscan, watcher.database)
    assert isinstance(engine, ClamscanEngine)
    assert engine.database == str(database)
    scanner = DirectoryScanner(watcher, str(scan_dir), engine, settle_seconds=0)
    sink = MemorySink()
    found = await scanner.poll_once(sink)
    check_sightings(found)
    assert (scanner.scanned, scanner.infected) == (3, 2)
    assert len(sink.positions) == 3  # the clean file is remembered too


@needs_clamscan
async def test_clamscan_database_problems_are_clear_errors(
    tmp_path: Path, specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext]
) -> None:
    missing = tmp_path / "no-such-db"
    with pytest.raises(WatcherError, match=r"clamscan database .*no-such-db does not exist"):
        await choose_engine("", "clamscan", str(missing))
    broken = tmp_path / "broken.ndb"
    broken.write_text("this is not a signature\n")
    fill(tmp_path / "scan", {"a.txt": b"clean"})
    engine = await choose_engine("", "clamscan", str(broken))
    with pytest.raises(WatcherError, match=r"clamscan failed on .*a\.txt \(exit 2\)"):
        await engine.scan(str(tmp_path / "scan" / "a.txt"))


@needs_clamscan
async def test_ingest_scans_every_file_of_a_large_directory(
    tmp_path: Path,
    database: Path,
    specs: dict[str, WatcherSpec],
    make_context: Callable[..., WatcherContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One file per poll: the infected files come after clean ones, in later polls.
    monkeypatch.setattr(clamscan_module, "MAX_FILES_PER_POLL", 1)
    scan_dir = tmp_path / "scan"
    fill(scan_dir, {"a.txt": b"clean", "b.txt": b"clean too", "y.pdf": MARKED_BYTES})
    fill(scan_dir, {"z.com": EICAR_BYTES})
    context = make_context({"clamd_socket": "", "database": str(database)})
    recording, _stats = await run_ingest(specs["clamav"], [str(scan_dir)], MemorySink(), context)
    check_sightings(list(recording.sightings))


def test_dtim_ingest_clamav_json_with_real_clamscan(tmp_path: Path, database: Path) -> None:
    if CLAMSCAN is None:
        pytest.skip("clamscan is not installed (Debian package clamav)")
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "dtim.toml").write_text(
        f'[watchers.clamav]\nclamd_socket = ""\ndatabase = "{database}"\n'
    )
    scan_dir = tmp_path / "scan"
    fill(scan_dir, {"eicar.com": EICAR_BYTES, "report.pdf": MARKED_BYTES, "notes.txt": b"hi"})
    command = ["ingest", "clamav", str(scan_dir), "--json", "--home", str(home)]
    result = subprocess.run(
        [sys.executable, "-m", "dtim.cli", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(row["type"], row["value"]) for row in rows} == digests(EICAR_BYTES) | digests(
        MARKED_BYTES
    )
    eicar_md5 = hashlib.md5(EICAR_BYTES).hexdigest()
    eicar = next(row for row in rows if row["value"] == eicar_md5)
    assert (eicar["source"], eicar["rule"], eicar["scope"]) == (
        "clamav",
        "clamav-infected",
        "local",
    )
    assert "eicar-test-signature" in eicar["tags"]
    assert all("path" not in row and "evidence" not in row for row in rows)


@contextlib.contextmanager
def clamd_process(database: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """clamd in the foreground with its own config; the socket in a short temporary path."""
    assert CLAMD is not None
    # A unix socket path must fit in 108 bytes; pytest's tmp_path may not.
    run_dir = Path(tempfile.mkdtemp(prefix="dtim-clamd-"))
    socket_path = run_dir / "clamd.ctl"
    log_path = run_dir / "clamd.log"
    config = run_dir / "clamd.conf"
    config.write_text(
        f"LocalSocket {socket_path}\nDatabaseDirectory {database}\nForeground yes\n"
        f"LogFile {log_path}\nTemporaryDirectory {run_dir}\nSelfCheck 3600\n"
    )
    process = subprocess.Popen(
        [CLAMD, "--config-file", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield str(socket_path), process, log_path
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(run_dir, ignore_errors=True)


async def wait_for_pong(socket_path: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + CLAMD_START_SECONDS
    while not await ClamdEngine(socket_path).ping():
        if process.poll() is not None or time.monotonic() > deadline:
            text = log.read_text(errors="replace")[-2000:] if log.exists() else ""  # noqa: ASYNC240  # once, on failure
            pytest.fail(f"clamd did not answer PING (exit {process.poll()}):\n{text}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def clamd(database: Path) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    if CLAMD is None:
        pytest.skip("clamd is not installed (Debian package clamav-daemon)")
    with clamd_process(database) as (socket_path, process, log):
        await wait_for_pong(socket_path, process, log)
        yield socket_path, process


@needs_clamd
async def test_real_clamd_scans_through_instream(
    tmp_path: Path,
    clamd: tuple[str, subprocess.Popen[bytes]],
    specs: dict[str, WatcherSpec],
    make_context: Callable[..., WatcherContext],
) -> None:
    socket_path, _process = clamd
    scan_dir = tmp_path / "incoming"
    fill(scan_dir, {"eicar.com": EICAR_BYTES, "notes.txt": b"hello"})
    fill(scan_dir / "sub", {"report.pdf": MARKED_BYTES})
    watcher = clamav_watcher(specs, make_context, clamd_socket=socket_path, clamscan="absent")
    engine = await choose_engine(watcher.clamd_socket, watcher.clamscan)
    assert isinstance(engine, ClamdEngine)
    assert await engine.scan(str(scan_dir / "notes.txt")) is None
    assert await engine.scan(str(scan_dir / "eicar.com")) == f"{EICAR_SIGNATURE}.UNOFFICIAL"
    scanner = DirectoryScanner(watcher, str(scan_dir), engine, settle_seconds=0)
    check_sightings(await scanner.poll_once(MemorySink()))


@needs_clamd
@needs_clamscan
async def test_scan_runner_survives_clamd_stopping_and_falls_back_to_clamscan(
    tmp_path: Path,
    database: Path,
    clamd: tuple[str, subprocess.Popen[bytes]],
    specs: dict[str, WatcherSpec],
    make_context: Callable[..., WatcherContext],
    caplog: pytest.LogCaptureFixture,
) -> None:
    socket_path, process = clamd
    scan_dir = tmp_path / "incoming"
    fill(scan_dir, {"eicar.com": EICAR_BYTES})
    watcher = clamav_watcher(specs, make_context, clamd_socket=socket_path, database=str(database))
    sink = MemorySink()
    runner = ScanRunner(watcher, str(scan_dir), sink, 0.05, retry_seconds=0.1, settle_seconds=1)
    stop = asyncio.Event()

    async def sightings_of(data: bytes) -> None:
        deadline = time.monotonic() + 20
        while not digests(data) <= {(s.indicator.type, s.indicator.value) for s in sink.sightings}:
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, runner.stats.to_json()
            await asyncio.sleep(0.05)

    with caplog.at_level(logging.WARNING, logger="dtim.watchers"):
        task = spawn(runner.run(stop), name="scan-runner")
        try:
            await sightings_of(EICAR_BYTES)  # through clamd
            process.terminate()
            process.wait(timeout=10)
            fill(scan_dir, {"report.pdf": MARKED_BYTES})
            await sightings_of(MARKED_BYTES)  # clamd is gone: clamscan with our database
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    assert any("clamd" in record.getMessage() for record in caplog.records)
    assert len(sink.sightings) == 6  # the EICAR file was not scanned again
    assert (runner.stats.lines, runner.stats.observations) == (2, 2)
