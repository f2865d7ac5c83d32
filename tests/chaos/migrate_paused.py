"""Run the store migration on a database URL, pausing for good before its N-th write.

``python -m tests.chaos.migrate_paused URL N``: prints ``paused <statement>``
and blocks forever right before the N-th schema or data statement of the
migration (the test kills it there, inside the migration's transaction), or
prints ``done <count>`` when the migration has fewer statements.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from sqlalchemy import event

from dtim.store.engine import make_engine, migrate

WRITES = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")


def main(url: str, pause_before: int) -> None:
    """Migrate ``url``; block before write number ``pause_before`` (1-based)."""
    engine = make_engine(url)
    seen = 0

    @event.listens_for(engine, "before_cursor_execute")
    def count(*args: Any) -> None:
        nonlocal seen
        statement = str(args[2]).lstrip().upper()
        if statement.startswith(WRITES):
            seen += 1
            if seen == pause_before:
                print("paused", statement.split("(")[0][:80], flush=True)
                threading.Event().wait()  # until SIGKILL

    migrate(engine)
    print("done", seen, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
