"""The load run's observer of the node, in its own process (``bench/load.py`` starts it).

    python bench/load_taxii.py HOME STATUS_FILE TAXII_PORT

With TAXII_PORT 0 (the default run: the node serves TAXII itself at ``/taxii2``
on its admin listener) it only observes. Otherwise (``bench/load.py --taxii-on
process``) it also serves the node's TAXII 2.1 server
(:func:`dtim.taxii.wiring.node_taxii_server`: the node's store, privacy filter
and TAXII accounts file) over HTTPS with the node's certificate, beside the node
process and on the same store, as a second API process of a scaled-out node
would. Settings come from the home and the ``DTIM__SECTION__KEY`` environment,
as for ``dtim node run``.

Every two seconds it writes to STATUS_FILE what ``bench/load.py`` follows:
the store's indicator count, the node's watcher counters (published by the
node into the store) and how many peers' CAs the node has pinned. Warnings
and errors it logs are counted there as problems. SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from load_traffic import write_json
from starlette.applications import Starlette
from starlette.routing import Mount

from dtim.config import NodeHome
from dtim.config.loader import load_settings
from dtim.errors import StoreError
from dtim.model import SystemClock
from dtim.service import spawn
from dtim.store import Store
from dtim.store.gossip import GossipStore
from dtim.taxii.wiring import node_taxii_server
from dtim.watchers.supervisor import STATS_STATE_KEY
from dtim.web.node import privacy_filter_for

TAXII_ACCOUNTS = "config/taxii-users.json"
"""The node's TAXII accounts file in its home (``bench/load.py`` adds the consumer)."""
STATUS_EVERY = 2.0


class ProblemLog(logging.Handler):
    """Counts warnings and errors (uvicorn's "Exception in ASGI application" among them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.samples) < 20:
            self.samples.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:300])


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # SIGTERM is handled below


async def status(
    store: Store, problems: ProblemLog, server: uvicorn.Server | None
) -> dict[str, Any]:
    """The counters ``bench/load.py`` reads."""
    try:
        watchers = await store.get_state(STATS_STATE_KEY)
        pinned = len(await GossipStore(store).pinned_cas())
        indicators = (await store.counts()).total
    except StoreError as exc:  # the node has not migrated the store yet
        return {"time": time.time(), "ready": False, "store": str(exc)}
    return {
        "time": time.time(),
        "ready": server is None or bool(server.started),
        "indicators": indicators,
        "pinned_peers": pinned,
        "watchers": watchers,
        "problems": problems.count,
        "problem_samples": problems.samples,
    }


async def main(root: Path, status_path: Path, port: int) -> None:
    """Serve TAXII until SIGTERM (see the module docstring)."""
    problems = ProblemLog()
    shown = logging.StreamHandler()
    shown.setLevel(logging.WARNING)
    shown.setFormatter(logging.Formatter("%(asctime)s taxii %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[problems, shown])
    home = NodeHome(root=root, settings=load_settings(root).settings)
    clock = SystemClock()
    store = Store(home.database_url)
    await store.connect()
    if port == 0:
        await observe(store, status_path, problems)
        return
    taxii = node_taxii_server(store, privacy_filter_for(home), home.path(TAXII_ACCOUNTS), clock)
    server = _Server(
        uvicorn.Config(
            Starlette(routes=[Mount("/taxii2", app=taxii.app())]),
            host="127.0.0.1",
            port=port,
            ssl_certfile=str(home.tls_cert),
            ssl_keyfile=str(home.tls_key),
            log_level="warning",
            log_config=None,  # uvicorn's errors reach the root logger, where they are counted
            access_log=False,
            lifespan="off",
            ws="none",
        )
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    serving = spawn(server.serve(), name="taxii-server")
    try:
        while not stop.is_set() and not serving.done():
            write_json(status_path, await status(store, problems, server))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATUS_EVERY)
    finally:
        server.should_exit = True
        await asyncio.wait([serving], timeout=5)
        write_json(status_path, {**await status(store, problems, server), "final": True})
        await store.close()
    serving.result()  # a server that failed to start ends the process with its error


async def observe(store: Store, status_path: Path, problems: ProblemLog) -> None:
    """Write the status every STATUS_EVERY seconds until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            write_json(status_path, await status(store, problems, None))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATUS_EVERY):
                    await stop.wait()
    finally:
        write_json(status_path, {**await status(store, problems, None), "final": True})
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
