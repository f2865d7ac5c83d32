"""Short SQLite reads on the event loop, each within a time budget.

The store runs its work in worker threads, and each hand-over costs more than a
dashboard page's indexed query itself: 0.1-0.2 ms there and back, and several
times that at the 99th percentile, when the thread or the loop waits for a core.
A :class:`LoopReader` runs such a read on the event loop instead, on a read-only
connection of its own, and SQLite's progress handler interrupts it once it has
held the loop for ``budget`` seconds. The caller then runs the read in the
store's thread as before, so a slow search costs the loop at most the budget,
and a statement whose thread run also took longer than the budget is not tried
on the loop again for a while.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping
from typing import Any

LOOP_READ_BUDGET = 0.002
"""Seconds a read may hold the event loop; about what rendering a page takes."""
SLOW_STATEMENT_PAUSE = 30.0
"""Seconds a statement that was slow in the thread as well is read only there."""
_PROGRESS_STEPS = 1000
"""SQLite virtual machine steps between two looks at the clock (a few microseconds)."""


class LoopReader:
    """A read-only SQLite connection for reads made on the event loop, within a budget."""

    def __init__(self, path: str, *, budget: float = LOOP_READ_BUDGET) -> None:
        """Open ``path`` read-only (``query_only``); the schema must already exist.

        Raises:
            sqlite3.Error: the file cannot be opened.
        """
        self.budget = budget
        # Used from whichever thread runs the loop; the lock below keeps it to one at a time.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA query_only=ON")
        self._conn.execute("PRAGMA busy_timeout=0")  # never wait on the loop: the thread waits
        self._conn.set_progress_handler(self._over_budget, _PROGRESS_STEPS)
        self._deadline = 0.0
        self._busy = threading.Lock()
        self._slow_until: dict[str, float] = {}
        self.moved = 0
        """Reads begun here that the thread had to make instead (over budget, busy, failed)."""

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Any] | None:
        """The rows of ``sql``, or None if it must run in the store's thread instead.

        None when the read ran past the budget, the database was busy, the
        connection is in use elsewhere, the statement was lately slow, or SQLite
        reported any error: the thread's run reports errors as the store does.
        """
        now = time.perf_counter()
        if self._slow_until.get(sql, 0.0) > now or not self._busy.acquire(blocking=False):
            return None
        try:
            self._deadline = now + self.budget
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error:
            self.moved += 1
            return None
        finally:
            self._busy.release()

    def took(self, sql: str, seconds: float) -> None:
        """Report the thread's run of ``sql``: if over the budget, keep it off the loop a while."""
        if seconds > self.budget:
            self._slow_until[sql] = time.perf_counter() + SLOW_STATEMENT_PAUSE
        else:
            self._slow_until.pop(sql, None)

    def close(self) -> None:
        """Close the connection."""
        with self._busy:
            self._conn.close()

    def _over_budget(self) -> int:
        return int(time.perf_counter() > self._deadline)
