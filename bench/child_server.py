"""Run a benchmark's server in a child process and tell the parent where it listens."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence

import uvicorn


@contextlib.contextmanager
def child_server(
    args: Sequence[str], env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start ``python args...``, a server that prints its port first; yield (process, port).

    ``env`` replaces the environment (default: this process's). The server is
    stopped on leaving, whatever happened.
    """
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        yield process, int(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=10)


async def serve_and_announce(
    server: uvicorn.Server, sockets: list[socket.socket] | None = None
) -> None:
    """Run ``server``; once it listens, print its port on stdout (the parent reads one line)."""
    task = asyncio.ensure_future(server.serve(sockets=sockets))
    while not server.started:  # uvicorn exposes only this flag
        if task.done():
            task.result()  # it failed to start: raise why
        await asyncio.sleep(0.01)
    print(server.servers[0].sockets[0].getsockname()[1], flush=True)
    await task
