"""Following the rotating log files of a directory (Zeek's ``zeek_log_dir``).

Each live log (``notice.log``, ``conn.log`` ...) gets its own
:class:`~dtim.watchers.tail.FileTailer`, whose rotation handling also finds
Zeek's ``conn.<time>.log`` archives. Files that appear later are picked up on
the next read; a directory that disappears is reported and retried, never fatal.
"""

from __future__ import annotations

import os

from dtim.watchers.base import SightingSink
from dtim.watchers.tail import BATCH_BYTES, MAX_LINE_BYTES, FileTailer, TailBatch


class DirectoryFollower:
    """Follows ``<directory>/<name>.log`` for each name in ``logs``.

    Args:
        watcher: the watcher name (key of the saved positions).
        directory: the directory to follow.
        logs: log names to follow (``conn`` follows ``conn.log``).
        start_at: where to start in a file never read before.
    """

    def __init__(
        self,
        watcher: str,
        directory: str,
        logs: tuple[str, ...],
        *,
        start_at: str = "end",
        max_line: int = MAX_LINE_BYTES,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self.watcher = watcher
        self.directory = directory
        self.start_at = start_at
        self.problem: str | None = None
        self.tailers = [
            FileTailer(
                watcher,
                os.path.join(directory, f"{name}.log"),
                start_at=start_at,
                max_line=max_line,
                batch_bytes=batch_bytes,
            )
            for name in logs
        ]
        self._next = 0

    async def restore(self, sink: SightingSink) -> None:
        """Restore every log's tailer."""
        for tailer in self.tailers:
            await tailer.restore(sink)
        self._check()

    def _check(self) -> None:
        if not os.path.isdir(self.directory):
            self.problem = f"{self.directory} is missing or not a directory"
        else:
            self.problem = None

    def read(self) -> TailBatch | None:
        """The next batch from any of the logs, round robin; None when all are idle."""
        self._check()
        if self.problem is not None:
            return None
        for step in range(len(self.tailers)):
            tailer = self.tailers[(self._next + step) % len(self.tailers)]
            batch = tailer.read()
            if batch is not None:
                self._next = (self._next + step + 1) % len(self.tailers)
                return batch
        return None

    def close(self) -> None:
        """Close every tailer's open file."""
        for tailer in self.tailers:
            tailer.close()
