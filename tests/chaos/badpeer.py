"""A peer that answers its node document properly, then garbage or nothing at all.

It runs on 127.0.0.1 over TLS with the certificate and identity of a
``dtim init`` home, so an honest node can adopt and approve it like any peer;
every other request gets :data:`GARBAGE` (``mode="garbage"``) or is read and
never answered (``mode="hang"``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson

from dtim.crypto.identity import create_identity, load_identity
from dtim.crypto.tls import ClientCertMode, issue_node_certificates, server_context
from dtim.gossip.nodeinfo import NODE_PATH, node_document

SPAWN = multiprocessing.get_context("spawn")
"""A fresh interpreter: no copy of the test process's threads and loops."""
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
    """The server; :meth:`running` starts it in a process of its own and stops it at the end.

    A process, not a thread of the test's: the connections it drops mid-TLS-close (or
    mid-handshake) when stopped end with it, instead of being collected later in the
    test process, where an unclosed transport's warning fails whatever test runs then.
    """

    def __init__(self, home: Path, port: int, mode: str) -> None:
        if mode not in ("garbage", "hang"):
            raise ValueError(f"mode must be 'garbage' or 'hang', not {mode!r}")
        self.home = home
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
        self._requests = SPAWN.Value("i", 0)
        self._started = SPAWN.Event()

    @property
    def requests(self) -> int:
        """Requests other than the node document (gossip the honest node tried)."""
        return int(self._requests.value)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode("ascii", "replace")
            if target == NODE_PATH:
                await self._send(writer, self.document)
                return
            with self._requests.get_lock():
                self._requests.value += 1
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

    def serve(self) -> None:
        """The process's work: serve until killed."""
        tls = server_context(
            self.home / "certs" / "node.crt",
            self.home / "certs" / "node.key",
            client_cert=ClientCertMode.NONE,
        )

        async def main() -> None:
            server = await asyncio.start_server(self._answer, "127.0.0.1", self.port, ssl=tls)
            self._started.set()
            async with server:
                await server.serve_forever()

        asyncio.run(main())

    @contextmanager
    def running(self) -> Iterator[BadPeer]:
        """Serve in a process of its own until the block ends."""
        process = SPAWN.Process(target=self.serve, name=f"bad-peer-{self.mode}")
        process.start()
        try:
            if not self._started.wait(30):
                raise RuntimeError("the bad peer did not start")
            yield self
        finally:
            process.kill()
            process.join(10)
