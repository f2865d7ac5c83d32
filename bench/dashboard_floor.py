"""The least a Python server can do for the indicators page, as a reference for dashboard.py.

An asyncio protocol reads each request head, runs the page's query on the same
database file in the event loop, and writes its 50 rows with ``html.escape``
into a body as long as the real page. There is no framework, session, template
or worker thread. Set beside the real page, it shows how much of the page's time
Python itself costs and how much DTIM's stack adds.

    python bench/dashboard_floor.py DATABASE_FILE BODY_BYTES   # prints its port
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from html import escape

QUERY = (
    "SELECT id, type, value, tlp, confidence, sightings, sources, last_seen "
    "FROM indicators ORDER BY seq DESC LIMIT 51"
)


class PageProtocol(asyncio.Protocol):
    """One keep-alive connection: every complete request head gets the page."""

    def __init__(self, db: sqlite3.Connection, body_bytes: int) -> None:
        self.db = db
        self.body_bytes = body_bytes
        self.received = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data
        while b"\r\n\r\n" in self.received:
            _, _, self.received = self.received.partition(b"\r\n\r\n")
            rows = "".join(
                f'<tr><td class="value"><a href="/indicators/{escape(r[0])}">{escape(r[2])}</a>'
                f"</td><td>{escape(r[1])}</td><td>{escape(r[3])}</td><td>{r[4]:d}</td>"
                f"<td>{r[5]:d}</td><td>{escape(r[6])}</td><td>{r[7]}</td></tr>"
                for r in self.db.execute(QUERY).fetchall()[:50]
            ).encode()
            body = rows.ljust(self.body_bytes, b" ")
            head = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: %d\r\n\r\n"
            assert self.transport is not None
            self.transport.write(head % len(body) + body)


async def serve(database: str, body_bytes: int) -> None:
    """Serve on 127.0.0.1 (port 0), print the port, run until killed."""
    db = sqlite3.connect(database)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: PageProtocol(db, body_bytes), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
