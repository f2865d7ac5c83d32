"""ClamAV: FOUND lines hash the named file; the scanner talks to a fake clamd or fails clearly."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dtim.errors import WatcherError
from dtim.model import Scope
from dtim.watchers.base import MemorySink, WatcherContext, WatcherSpec
from dtim.watchers.clamav import ClamavWatcher
from dtim.watchers.clamscan import ClamdEngine, DirectoryScanner, choose_engine

MARKER = b"DTIM-TEST-MALWARE-MARKER"


class FakeClamd:
    """A clamd speaking PING and zINSTREAM on a unix socket; files holding MARKER are infected."""

    def __init__(self) -> None:
        self.scans = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command = await reader.readuntil(b"\0")
        if command == b"zPING\0":
            writer.write(b"PONG\0")
        elif command == b"zINSTREAM\0":
            data = b""
            while size := struct.unpack(">I", await reader.readexactly(4))[0]:
                data += await reader.readexactly(size)
            self.scans += 1
            writer.write(b"stream: Test.Marker.DTIM FOUND\0" if MARKER in data else b"stream: OK\0")
        else:
            writer.write(b"UNKNOWN COMMAND\0")
        await writer.drain()
        writer.close()


@pytest.fixture
async def clamd(tmp_path: Path) -> AsyncIterator[tuple[FakeClamd, str]]:
    fake = FakeClamd()
    path = str(tmp_path / "clamd.ctl")
    server = await asyncio.start_unix_server(fake.handle, path)
    async with server:
        yield fake, path


async def test_scanner_hashes_and_scans_new_files_once(
    tmp_path: Path,
    clamd: tuple[FakeClamd, str],
    specs: dict[str, WatcherSpec],
    make_context: Callable[..., WatcherContext],
) -> None:
    fake, socket_path = clamd
    scan_dir = tmp_path / "incoming"
    (scan_dir / "sub").mkdir(parents=True)
    bad = b"header " + MARKER + b" trailer"
    (scan_dir / "sub" / "evil.bin").write_bytes(bad)
    (scan_dir / "report.txt").write_text("quarterly report")
    engine = await choose_engine(socket_path)
    assert isinstance(engine, ClamdEngine)
    watcher = specs["clamav"].create(make_context())
    assert isinstance(watcher, ClamavWatcher)
    sink = MemorySink()
    scanner = DirectoryScanner(watcher, str(scan_dir), engine, settle_seconds=0)
    found = await scanner.poll_once(sink)
    assert {(s.indicator.type, s.indicator.value) for s in found} == {
        ("sha256", hashlib.sha256(bad).hexdigest()),
        ("sha1", hashlib.sha1(bad).hexdigest()),
        ("md5", hashlib.md5(bad).hexdigest()),
    }
    assert all(
        "test.marker.dtim" in s.indicator.tags and s.indicator.scope is Scope.PRIVATE for s in found
    )
    assert fake.scans == 2
    assert len(sink.positions) == 2
    restarted = DirectoryScanner(watcher, str(scan_dir), engine, settle_seconds=0)
    assert await restarted.poll_once(sink) == []
    assert fake.scans == 2


async def test_found_line_hashes_the_named_file(
    tmp_path: Path, specs: dict[str, WatcherSpec], make_context: Callable[..., WatcherContext]
) -> None:
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "eicar.com.txt").write_bytes(b"not really eicar")
    watcher = specs["clamav"].create(make_context({"path_root": str(tmp_path)}))
    observation = watcher.parser_for("clamscan.txt").parse(
        "scan/eicar.com.txt: Eicar-Test-Signature.LOCAL.UNOFFICIAL FOUND"
    )
    assert observation is not None
    found = watcher.detect(observation)
    assert {s.indicator.type for s in found} == {"sha256", "sha1", "md5"}
    assert all(
        s.indicator.scope is Scope.LOCAL and "test-file" in s.indicator.tags for s in found
    )  # test signatures stay home


async def test_no_engine_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WatcherError, match=r"clamd does not answer.*no 'no-such-clamscan' binary"):
        await choose_engine(str(tmp_path / "absent.ctl"), "no-such-clamscan")
