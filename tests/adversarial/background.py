"""Servers that live in their own event loop thread, for sync test code such as schemathesis.

Schemathesis sends its requests with a blocking client, so the servers under test
cannot share the test's event loop. :func:`in_background` runs an async context
manager (stores, nodes, uvicorn) in a dedicated loop thread, hands its value to
the caller, and unwinds it in that same task when the block exits::

    with in_background(lambda: serve(app, ssl_context=tls)) as url:
        requests.get(url + "/healthz", verify=ca_file)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from dtim.api.mtls import TLSExtensionMixin
from tests.servers import loopback_socket

T = TypeVar("T")
START = 30.0
"""Seconds allowed for start-up (a loaded 2-core machine is slow to build nodes)."""


class _Quiet(uvicorn.Server):
    """No signal handlers: the test process owns SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _TlsScope(TLSExtensionMixin, H11Protocol):
    """h11 with the ASGI TLS extension (the client certificate in the scope)."""


@contextlib.asynccontextmanager
async def serve(app: Any, *, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (port chosen by the OS) in the running loop.

    Yields the base URL: ``https://`` with a context (client certificates reach the
    app through the TLS scope extension), ``http://`` without.
    """
    sock = loopback_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=_TlsScope if ssl_context is not None else H11Protocol,
        ssl_context_factory=(lambda _c, _d: ssl_context) if ssl_context is not None else None,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_keep_alive=60,
        # A client that keeps a TLS connection open must not hold up the teardown for long.
        timeout_graceful_shutdown=5,
    )
    server = _Quiet(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        deadline = asyncio.get_running_loop().time() + START
        while not server.started:
            if task.done():
                task.result()  # raises the start-up error
                raise RuntimeError("uvicorn stopped before it started")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("uvicorn did not start within the deadline")
            await asyncio.sleep(0.01)
        scheme = "https" if ssl_context is not None else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, START)
        sock.close()


@contextlib.contextmanager
def in_background(factory: Callable[[], AbstractAsyncContextManager[T]]) -> Iterator[T]:
    """Enter ``factory()`` in a new event loop thread; yield its value; exit it there.

    The context manager is entered and exited by one task, so task-bound resources
    (task groups, connection pools) unwind normally.
    """
    loop = asyncio.new_event_loop()
    entered: concurrent.futures.Future[T] = concurrent.futures.Future()
    stop = asyncio.Event()

    async def hold() -> None:
        try:
            async with factory() as value:
                entered.set_result(value)
                await stop.wait()
        except BaseException as exc:
            if not entered.done():
                entered.set_exception(exc)
                return
            raise

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(hold())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="fuzz-servers", daemon=True)
    thread.start()
    try:
        yield entered.result(timeout=START * 4)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=START)
        if thread.is_alive():
            raise RuntimeError("background servers did not stop within the deadline")
