"""Following a log file across rotations, with positions that survive restarts.

A :class:`FileTailer` follows one configured path by inode. It hands out
complete lines in batches, each with the :class:`~dtim.model.TailPosition`
just after them (inode, byte offset at a line boundary, fingerprint of the
file's first bytes); the runner commits that position together with the
sightings of those lines, so a restart after ``kill -9`` resumes exactly
there. Rename rotation: the old file is read to its end (its unterminated
last line included) before the new one is opened. Copytruncate (the file
shrinks, or its first bytes change): reading restarts at 0. After downtime,
the file the saved position points into is found among the rotated siblings
(``.1``, ``.2.gz``, dateext, Zeek's ``conn.<time>.log``) by inode or
fingerprint, and the rest of it and every newer rotation are read first.
A missing or unreadable path is reported (``problem``) and retried on every
read; a file that appears after start is read from its beginning.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from dtim.model import TailPosition
from dtim.watchers.base import SightingSink

FINGERPRINT_BYTES = 256
MAX_LINE_BYTES = 64 * 1024
BATCH_BYTES = 1 << 20
MAX_ROTATED = 20


@dataclass(slots=True)
class TailBatch:
    """Complete lines read from one file, and the position just after them.

    Attributes:
        path: the configured path (the position's key).
        file: the file actually read (a rotated sibling while catching up).
        lines: decoded lines without their newline.
        first_line: 1-based line number of ``lines[0]`` when reading started at byte 0, else None.
        oversized: lines longer than the cap, skipped without being held in memory.
        position: where to resume after these lines (None when nothing can be committed).
    """

    path: str
    file: str
    lines: list[str]
    first_line: int | None
    oversized: int = 0
    position: TailPosition | None = None


def fingerprint(path: str, length: int) -> str:
    """SHA-256 (hex) of the first ``length`` bytes (``FINGERPRINT_BYTES`` at most), gzip-aware."""
    wanted = min(length, FINGERPRINT_BYTES)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        head = handle.read(wanted)
    return hashlib.sha256(head).hexdigest()


def rotated_siblings(path: str) -> list[str]:
    """Rotated versions of ``path``, newest first.

    Finds ``x.log.1``, ``x.log.2.gz``, ``x.log-20240101`` and Zeek's ``x.<time>.log``.
    """
    directory, name = os.path.split(path)
    stem = name[: -len(".log")] if name.endswith(".log") else name
    try:
        entries = list(os.scandir(directory or "."))
    except OSError:
        return []
    found: list[tuple[float, str]] = []
    for entry in entries:
        other = entry.name
        if other == name or not (
            other.startswith((name + ".", name + "-"))
            or (other.startswith(stem + ".") and ".log" in other)
        ):
            continue
        try:
            if entry.is_file():
                found.append((entry.stat().st_mtime, entry.path))
        except OSError:
            continue
    found.sort(reverse=True)
    return [item for _, item in found[:MAX_ROTATED]]


def _open_binary(path: str) -> BinaryIO:
    if path.endswith(".gz"):
        return cast(BinaryIO, gzip.open(path, "rb"))
    return open(path, "rb")  # the tailer keeps it open across reads


@dataclass(slots=True)
class _Pending:
    file: str
    offset: int


@dataclass(slots=True)
class _Open:
    file: str
    handle: BinaryIO
    inode: int
    live: bool
    offset: int
    read_pos: int
    numbered: bool
    line_number: int = 0
    buffer: bytes = b""
    skipping: bool = False
    fingerprint: str = ""
    fingerprint_length: int = -1
    extra: dict[str, int] = field(default_factory=dict)


class FileTailer:
    """Follows one path; call :meth:`restore` once, then :meth:`read` until it returns None.

    Args:
        watcher: the watcher name (key of the saved positions).
        path: the path to follow.
        start_at: ``"end"`` or ``"beginning"``: where to start in a file never read before.
        max_line: longer lines are counted and skipped.
        batch_bytes: most bytes read per :meth:`read`.
        siblings: finds rotated versions of the path (newest first).
        follow: False reads the file once to its end (``dtim ingest``), unterminated last
            line included.
    """

    def __init__(
        self,
        watcher: str,
        path: str,
        *,
        start_at: str = "end",
        max_line: int = MAX_LINE_BYTES,
        batch_bytes: int = BATCH_BYTES,
        siblings: Callable[[str], list[str]] = rotated_siblings,
        follow: bool = True,
    ) -> None:
        if start_at not in ("end", "beginning"):
            raise ValueError(f"start_at must be 'end' or 'beginning', not {start_at!r}")
        self.watcher = watcher
        self.path = path
        self.start_at = start_at
        self.max_line = max_line
        self.batch_bytes = batch_bytes
        self.siblings = siblings
        self.follow = follow
        self.problem: str | None = None
        self._open: _Open | None = None
        self._queue: list[_Pending] = []
        self._restored = False

    async def restore(self, sink: SightingSink) -> None:
        """Decide where to start from the saved position (or ``start_at``)."""
        saved = await sink.position(self.watcher, self.path)
        self._restored = True
        try:
            live = os.stat(self.path)
        except OSError as exc:
            self._report(exc)
            live = None
        if saved is None:
            if live is not None:
                start = 0 if self.start_at == "beginning" else self._last_line_end(live.st_size)
                self._queue = [_Pending(self.path, start)]
            return
        if (
            live is not None
            and live.st_ino == saved.inode
            and live.st_size >= saved.offset
            and self._same(self.path, saved)
        ):
            self._queue = [_Pending(self.path, saved.offset)]
            return
        candidates = self.siblings(self.path)
        for index, candidate in enumerate(candidates):
            if self._same(candidate, saved, inode=not candidate.endswith(".gz")):
                newer = [_Pending(c, 0) for c in reversed(candidates[:index])]
                self._queue = [_Pending(candidate, saved.offset), *newer]
                break
        # Whatever happened while we were down, the live file is new to us: read it whole.
        self._queue.append(_Pending(self.path, 0))

    @classmethod
    def whole(
        cls, path: str, *, max_line: int = MAX_LINE_BYTES, batch_bytes: int = BATCH_BYTES
    ) -> FileTailer:
        """A tailer that reads ``path`` once from its first byte to its end (``.gz`` aware)."""
        tailer = cls(
            "ingest",
            path,
            start_at="beginning",
            max_line=max_line,
            batch_bytes=batch_bytes,
            follow=False,
        )
        tailer._queue = [_Pending(path, 0)]
        return tailer

    def _same(self, path: str, saved: TailPosition, *, inode: bool = False) -> bool:
        try:
            if inode and os.stat(path).st_ino != saved.inode:
                return False
            return fingerprint(path, saved.offset) == saved.fingerprint
        except OSError:
            return False

    def _last_line_end(self, size: int) -> int:
        try:
            with open(self.path, "rb") as handle:
                start = max(0, size - self.max_line)
                handle.seek(start)
                tail = handle.read(size - start)
        except OSError:
            return size
        cut = tail.rfind(b"\n")
        return start + cut + 1 if cut >= 0 else (start if start else 0)

    def _report(self, exc: OSError) -> None:
        reason = (
            "missing"
            if isinstance(exc, FileNotFoundError)
            else "unreadable"
            if isinstance(exc, PermissionError)
            else "failing"
        )
        self.problem = f"{self.path} is {reason}: {exc.strerror or exc}"

    def _open_next(self) -> bool:
        if self._queue:
            pending = self._queue[0]
        elif self._restored and self.follow:
            pending = _Pending(self.path, 0)
        else:
            return False
        live = pending.file == self.path and self.follow
        try:
            handle = _open_binary(pending.file)
            inode = (
                os.fstat(handle.fileno()).st_ino
                if not pending.file.endswith(".gz")
                else os.stat(pending.file).st_ino
            )
            if pending.offset:
                handle.seek(pending.offset)
        except OSError as exc:
            self._report(exc)
            if live:
                return False
            self._queue.pop(0)  # a rotated file that vanished meanwhile: nothing to read from it
            return self._open_next()
        if self._queue:
            self._queue.pop(0)
        self.problem = None
        self._open = _Open(
            pending.file,
            handle,
            inode,
            live,
            pending.offset,
            pending.offset,
            numbered=pending.offset == 0,
        )
        return True

    def close(self) -> None:
        """Release the open file."""
        if self._open is not None:
            self._open.handle.close()
            self._open = None

    def read(self) -> TailBatch | None:
        """The next batch of complete lines, or None when nothing new is there."""
        for _ in range(MAX_ROTATED + 2):
            if self._open is None and not self._open_next():
                return None
            state = self._open
            assert state is not None  # nosec B101  # opened just above
            try:
                data = state.handle.read(self.batch_bytes)
            except OSError as exc:
                self._report(exc)
                self._queue.insert(0, _Pending(state.file, state.offset))
                self.close()
                return None
            if data:
                return self._split(state, data, final=False)
            finished, again = self._check_rotation(state)
            if finished is not None:
                return finished
            if not again and self._open is state:
                return None
        return None

    def _check_rotation(self, state: _Open) -> tuple[TailBatch | None, bool]:
        """At end of file: move on if the file was rotated, restart if it was truncated.

        Returns a last batch of the finished file (if any) and whether to read again at once.
        """
        if not state.live:
            batch = self._split(state, b"", final=True)
            self.close()
            return (batch if batch.lines or batch.oversized else None), True
        try:
            current = os.stat(self.path)
        except OSError:
            return None, False  # renamed away and not recreated yet: keep the old file open
        if current.st_ino != state.inode:
            batch = self._split(state, b"", final=True)
            self.close()
            self._queue.insert(0, _Pending(self.path, 0))
            return (batch if batch.lines or batch.oversized else None), True
        if current.st_size < state.read_pos or (
            state.offset and not self._fingerprint_matches(state)
        ):
            state.handle.seek(0)
            state.offset = state.read_pos = state.line_number = 0
            state.buffer, state.skipping, state.numbered = b"", False, True
            state.fingerprint_length = -1
            return None, True
        return None, False

    def _fingerprint_matches(self, state: _Open) -> bool:
        if state.fingerprint_length < 0:
            return True
        try:
            return fingerprint(state.file, state.fingerprint_length) == state.fingerprint
        except OSError:
            return True

    def _split(self, state: _Open, data: bytes, *, final: bool) -> TailBatch:
        start = state.read_pos
        state.read_pos += len(data)
        oversized = 0
        if state.skipping:
            cut = data.find(b"\n")
            if cut < 0 and not final:
                return self._batch(state, [], oversized)
            state.skipping = False
            data = data[cut + 1 :] if cut >= 0 else b""
            state.offset = start + cut + 1 if cut >= 0 else state.read_pos
            state.line_number += 1
        chunk = state.buffer + data
        if final:  # the unterminated last line counts too
            cut, tail = len(chunk) - chunk.endswith(b"\n"), b""
        else:
            cut = chunk.rfind(b"\n")
            tail = chunk[cut + 1 :]
        first = state.line_number + 1
        lines: list[str] = []
        if cut >= 0 and chunk:
            lines, oversized = self._decode(chunk[:cut])
        state.line_number += len(lines)
        state.offset = state.read_pos - len(tail)
        if len(tail) > self.max_line:
            oversized += 1
            state.skipping = True
            tail = b""
        state.buffer = tail
        return self._batch(state, lines, oversized, first)

    def _decode(self, body: bytes) -> tuple[list[str], int]:
        """The lines of ``body`` (complete lines without the last newline), and how many
        were over the cap (left as empty placeholders so line numbers stay right)."""
        # One decode per chunk: a UTF-8 sequence never spans a newline, so this equals
        # decoding line by line. No line can be over the cap when 4 bytes per character
        # would not reach it; otherwise measure the raw lines.
        lines = body.decode("utf-8", "replace").split("\n")
        if max(map(len, lines)) * 4 > self.max_line:
            raws = body.split(b"\n")
            over = [i for i, raw in enumerate(raws) if len(raw) > self.max_line]
            for index in over:
                lines[index] = ""  # the runner skips empties
            if over:
                return [line.removesuffix("\r") for line in lines], len(over)
        if b"\r" in body:
            lines = [line.removesuffix("\r") for line in lines]
        return lines, 0

    def _batch(self, state: _Open, lines: list[str], oversized: int, first: int = 0) -> TailBatch:
        if (
            state.fingerprint_length < FINGERPRINT_BYTES
            and state.offset != state.fingerprint_length
        ):
            try:
                state.fingerprint = fingerprint(state.file, state.offset)
                state.fingerprint_length = min(state.offset, FINGERPRINT_BYTES)
            except OSError:
                pass  # fingerprint of a file that just vanished: keep the previous one
        position = TailPosition(
            self.watcher, self.path, state.inode, state.offset, state.fingerprint
        )
        return TailBatch(
            self.path, state.file, lines, first if state.numbered else None, oversized, position
        )
