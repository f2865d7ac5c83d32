"""A peer that answers its node document properly, then garbage or nothing at all.

It runs on 127.0.0.1 over TLS with the certificate and identity of a
``dtim init`` home, so an honest node can adopt and approve it like any peer;
every other request gets :data:`GARBAGE` (``mode="garbage"``) or is read and
never answered (``mode="hang"``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson

from dtim.crypto.identity import create_identity, load_identity
from dtim.crypto.tls import ClientCertMode, issue_node_certificates, server_context
from dtim.gossip.nodeinfo import NODE_PATH, node_document

GARBAGE = os.urandom(4096)
"""What the garbage peer answers (random bytes declared as JSON)."""


def bad_peer_home(home: Path) -> Path:
    """Identity keys and TLS material for a bad peer (what ``dtim init`` makes, in-process)."""
    identity = create_identity(home / "keys")
    issue_node_certificates(
        home / "certs", ["127.0.0.1"], now=datetime.now(UTC), common_name=identity.node_id[:32]
    )
    return home


class BadPeer:
    """The server; :meth:`running` starts it in a thread and stops it at the end."""

    def __init__(self, home: Path, port: int, mode: str) -> None:
        if mode not in ("garbage", "hang"):
            raise ValueError(f"mode must be 'garbage' or 'hang', not {mode!r}")
        self.mode = mode
        self.port = port
        identity = load_identity(home / "keys")
        self.node_id = identity.node_id
        self.public_key = identity.public_key_b64
        self.document = orjson.dumps(
            node_document(
                identity,
                endpoint=f"https://127.0.0.1:{port}",
                ca_pem=(home / "certs" / "ca.crt").read_text(encoding="ascii"),
                software="dtim/bad-peer",
            )
        )
        self.tls = server_context(
            home / "certs" / "node.crt",
            home / "certs" / "node.key",
            client_cert=ClientCertMode.NONE,
        )
        self.requests = 0
        """Requests other than the node document (gossip the honest node tried)."""

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode("ascii", "replace")
            if target == NODE_PATH:
                await self._send(writer, self.document)
                return
            self.requests += 1
            if self.mode == "garbage":
                await self._send(writer, GARBAGE)
            else:
                await asyncio.Event().wait()  # hang: never answer, keep the connection open
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError):
            return
        finally:
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, body: bytes) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    @contextmanager
    def running(self) -> Iterator[BadPeer]:
        """Serve in a background thread until the block ends."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        stop = asyncio.Event()

        async def serve() -> None:
            server = await asyncio.start_server(self._answer, "127.0.0.1", self.port, ssl=self.tls)
            started.set()
            async with server:
                await stop.wait()
                hung = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in hung:
                    task.cancel()
                await asyncio.gather(*hung, return_exceptions=True)

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        if not started.wait(10):
            raise RuntimeError("the bad peer did not start")
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)
            loop.close()
