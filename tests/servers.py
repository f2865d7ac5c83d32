"""Real uvicorn servers on 127.0.0.1 (port 0) for tests and benchmarks.

Usage::

    from tests.servers import running_server

    with running_server(app, ssl_context=ctx) as server:
        httpx.get(server.url("/health"), verify=client_ctx)

The server runs its own event loop in a daemon thread, so it works the same from
sync tests, async tests (the test's loop stays free for the client) and scripts.
Start-up waits on ``uvicorn.Server.started`` with a deadline, never a fixed sleep;
the OS picks the port. With ``mtls=True`` (the default when an SSL context is given)
requests carry the ASGI TLS extension (``scope["extensions"]["tls"]``) through
:class:`dtim.api.mtls.TLSExtensionMixin`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from dtim.api.mtls import TLSExtensionMixin

START_TIMEOUT = 10.0


def loopback_socket() -> socket.socket:
    """A TCP socket bound to 127.0.0.1 on a port the OS picks, for uvicorn's ``sockets=``.

    Made with ``IPPROTO_TCP``: asyncio turns Nagle off only on connections of such
    sockets; with ``socket.socket()`` (protocol 0) every response body waits about
    40 ms for the client's delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class PeerH11Protocol(TLSExtensionMixin, H11Protocol):
    """uvicorn's h11 protocol with the ASGI TLS extension (what ``service`` should use too)."""


@dataclass(frozen=True)
class RunningServer:
    """A started server: its base URL (``https://127.0.0.1:PORT``) and port."""

    base_url: str
    port: int
    server: uvicorn.Server

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.base_url + path


@contextmanager
def running_server(
    app: ASGIApp,
    *,
    ssl_context: ssl.SSLContext | None = None,
    mtls: bool | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[RunningServer]:
    """Run ``app`` under uvicorn on ``host``:0 until the block exits.

    Args:
        app: any ASGI application.
        ssl_context: serve HTTPS with this context (it is used as is: its SNI
            callback, verify mode and trust store all apply).
        mtls: expose the client certificate in the scope (default: when TLS is on).
        host: loopback address to bind.
        port: the port (0: the OS picks one); tests that restart a server reuse its port.
    """
    use_tls_scope = ssl_context is not None if mtls is None else mtls
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=PeerH11Protocol if use_tls_scope else H11Protocol,
        ssl_context_factory=(lambda _cfg, _default: ssl_context) if ssl_context else None,
        lifespan="off",
        log_config=None,  # leave the process's logging alone (pytest's caplog sees records)
        log_level="warning",
        access_log=False,
        ws="none",
        # Long enough that a keep-alive connection survives a slow (loaded) test step.
        timeout_keep_alive=60,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as exc:  # reported to the test thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name="uvicorn-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start: {failure!r}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("uvicorn did not start within the deadline")
        time.sleep(0.005)  # polling a flag owned by the other thread, with a deadline
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if ssl_context is not None else "http"
    try:
        yield RunningServer(f"{scheme}://{host}:{port}", port, server)
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT)
