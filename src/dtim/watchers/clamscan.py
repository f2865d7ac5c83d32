"""Scanning new files of ``clamav_scan_dir``: hash them, scan them through clamd or clamscan.

clamd is reached on its unix socket (or ``host:port``) with the INSTREAM
command, so clamd needs no access to the file; when clamd does not answer,
the ``clamscan`` binary is run instead; when neither exists the scanner
refuses to start with a clear error. A scanned file's position
(inode, size, SHA-256) is committed with its sightings, so a restart does not
scan it again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dtim.errors import WatcherError
from dtim.model import Clock, Sighting, SystemClock, TailPosition
from dtim.watchers.base import SightingSink
from dtim.watchers.clamav import ClamavWatcher, FileHashes, hash_file

CHUNK = 64 * 1024
TIMEOUT = 60.0
MAX_FILES_PER_POLL = 1000


class ScanEngine(Protocol):
    """Something that says whether a file is infected."""

    @property
    def name(self) -> str:
        """``clamd`` or ``clamscan``."""
        ...

    async def scan(self, path: str) -> str | None:
        """The signature found in ``path``, or None when it is clean.

        Raises:
            WatcherError: the engine failed.
        """
        ...


@dataclass(frozen=True, slots=True)
class ClamdEngine:
    """clamd over a unix socket path or ``host:port``, speaking INSTREAM."""

    address: str
    name: str = "clamd"

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if ":" in self.address and not self.address.startswith("/"):
            host, _, port = self.address.rpartition(":")
            async with asyncio.timeout(TIMEOUT):
                return await asyncio.open_connection(host, int(port))
        async with asyncio.timeout(TIMEOUT):
            return await asyncio.open_unix_connection(self.address)

    async def ping(self) -> bool:
        """True when clamd answers PONG."""
        try:
            reader, writer = await self._connect()
        except (OSError, TimeoutError, ValueError):
            return False
        try:
            writer.write(b"zPING\0")
            await writer.drain()
            async with asyncio.timeout(TIMEOUT):
                answer = await reader.readuntil(b"\0")
            return answer.rstrip(b"\0") == b"PONG"
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return False
        finally:
            writer.close()

    async def scan(self, path: str) -> str | None:
        """Stream the file to clamd and read its verdict.

        Raises:
            WatcherError: clamd is unreachable, failed, or answered something unexpected.
        """
        try:
            reader, writer = await self._connect()
        except (OSError, TimeoutError, ValueError) as exc:
            raise WatcherError(f"clamd at {self.address} is unreachable: {exc}") from exc
        try:
            writer.write(b"zINSTREAM\0")
            with open(path, "rb") as handle:  # noqa: ASYNC230  # chunks of 64 KiB between awaits
                while chunk := handle.read(CHUNK):
                    writer.write(struct.pack(">I", len(chunk)) + chunk)
                    await writer.drain()
            writer.write(struct.pack(">I", 0))
            await writer.drain()
            async with asyncio.timeout(TIMEOUT):
                raw = await reader.readuntil(b"\0")
            answer = raw.rstrip(b"\0").decode("utf-8", "replace")
        except (
            OSError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ) as exc:
            raise WatcherError(f"clamd at {self.address} failed scanning {path}: {exc}") from exc
        finally:
            writer.close()
        return parse_clamd_reply(answer)


def parse_clamd_reply(answer: str) -> str | None:
    """``stream: OK`` → None; ``stream: Eicar-Signature FOUND`` → the signature.

    Raises:
        WatcherError: an ERROR reply or anything else.
    """
    _, _, verdict = answer.partition(": ")
    if verdict == "OK":
        return None
    if verdict.endswith(" FOUND"):
        return verdict[: -len(" FOUND")]
    raise WatcherError(f"clamd answered {answer!r}")


@dataclass(frozen=True, slots=True)
class ClamscanEngine:
    """The ``clamscan`` binary, one file per run (exit 0 clean, 1 infected, 2 error)."""

    binary: str
    database: str = ""
    """Signature database file or directory (``-d``); empty: clamscan's default."""
    name: str = "clamscan"

    async def scan(self, path: str) -> str | None:
        """Run clamscan on one file.

        Raises:
            WatcherError: clamscan failed or timed out.
        """
        database = ("-d", self.database) if self.database else ()
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "--no-summary",
            "--stdout",
            *database,
            "--",
            path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(TIMEOUT * 5):
                out, err = await process.communicate()
        except TimeoutError as exc:
            process.kill()
            raise WatcherError(f"clamscan timed out on {path}") from exc
        if process.returncode == 0:
            return None
        for line in out.decode("utf-8", "replace").splitlines():
            if line.endswith(" FOUND"):
                return line[: -len(" FOUND")].rpartition(": ")[2]
        raise WatcherError(
            f"clamscan failed on {path} (exit {process.returncode}): "
            f"{err.decode('utf-8', 'replace').strip()[:200]}"
        )


async def choose_engine(
    clamd_socket: str, clamscan: str = "clamscan", database: str = ""
) -> ScanEngine:
    """clamd when it answers PING, else the clamscan binary (with ``database`` as ``-d``).

    Raises:
        WatcherError: neither is available, naming both; or clamscan's database is missing.
    """
    clamd = ClamdEngine(clamd_socket)
    if clamd_socket and await clamd.ping():
        return clamd
    binary = shutil.which(clamscan)
    if binary is not None:
        if database and not os.path.exists(database):  # noqa: ASYNC240  # one stat per start
            raise WatcherError(f"cannot scan: the clamscan database {database} does not exist")
        return ClamscanEngine(binary, database)
    raise WatcherError(
        f"cannot scan: clamd does not answer on {clamd_socket or '(no socket configured)'} and no "
        f"{clamscan!r} binary is on PATH (install clamav-daemon or clamav)"
    )


class DirectoryScanner:
    """Finds new or changed files under a directory and scans them.

    Args:
        watcher: the ClamAV watcher (turns infections into sightings).
        directory: the directory to scan, recursively.
        engine: clamd or clamscan.
        settle_seconds: files modified more recently than this are left for the next poll.
    """

    def __init__(
        self,
        watcher: ClamavWatcher,
        directory: str,
        engine: ScanEngine,
        *,
        settle_seconds: float = 2.0,
        clock: Clock | None = None,
    ) -> None:
        self.watcher = watcher
        self.directory = directory
        self.engine = engine
        self.settle_seconds = settle_seconds
        self.clock = clock or SystemClock()
        self.problem: str | None = None
        self.scanned = 0
        self.infected = 0
        self._seen: dict[str, tuple[int, int, float]] = {}

    def _candidates(self) -> list[tuple[str, os.stat_result]]:
        found: list[tuple[str, os.stat_result]] = []
        now = self.clock.now().timestamp()
        for root, _dirs, files in os.walk(self.directory, onerror=lambda _exc: None):
            for name in sorted(files):
                path = os.path.join(root, name)
                try:
                    info = os.stat(path)
                except OSError:
                    continue
                identity = (info.st_ino, info.st_size, info.st_mtime)
                if self._seen.get(path) == identity or now - info.st_mtime < self.settle_seconds:
                    continue
                found.append((path, info))
                if len(found) >= MAX_FILES_PER_POLL:
                    return found
        return found

    async def poll_once(
        self, sink: SightingSink, *, commit_positions: bool = True
    ) -> list[Sighting]:
        """Scan what is new; commit sightings with the files' positions; return the sightings."""
        if not os.path.isdir(self.directory):  # noqa: ASYNC240  # one stat per poll
            self.problem = f"{self.directory} is missing or not a directory"
            return []
        self.problem = None
        found: list[Sighting] = []
        positions: list[TailPosition] = []
        for path, info in self._candidates():
            hashes = await asyncio.to_thread(hash_file, path)
            if hashes is None:
                continue
            self._seen[path] = (info.st_ino, info.st_size, info.st_mtime)
            position = TailPosition(
                self.watcher.name, path, info.st_ino, info.st_size, hashes.sha256
            )
            if commit_positions and await sink.position(self.watcher.name, path) == position:
                continue  # scanned before a restart
            found.extend(await self._scan(path, hashes, info.st_mtime))
            positions.append(position)
        if found or (positions and commit_positions):
            await sink.commit(found, positions if commit_positions else [])
        return found

    async def _scan(self, path: str, hashes: FileHashes, mtime: float) -> Sequence[Sighting]:
        signature = await self.engine.scan(path)
        self.scanned += 1
        if signature is None:
            return []
        self.infected += 1
        line = f"{path}: {signature} FOUND"
        return self.watcher.infected(path, signature, hashes, mtime, line)
