"""Indicators as ArcSight CEF lines over syslog (RFC 5424 messages, over UDP or TCP) for SIEMs.

Both senders offer the same non-blocking :meth:`send`: UDP datagrams are
fire-and-forget; TCP frames (RFC 6587 octet counting) go through a bounded
queue drained by :meth:`CefTcpSender.run`, which reconnects with back-off, so
a collector that is down or stops reading only drops (and counts) lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, datetime

from dtim import __version__
from dtim.metrics import METRICS, Metrics
from dtim.privacy import Shareable

_TYPE_FIELDS = {
    "ipv4": "src",
    "ipv6": "c6a2",
    "domain": "dhost",
    "url": "request",
    "email": "suser",
}


def _escape_header(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


def format_cef(shared: Shareable) -> str:
    """One CEF event for a shared indicator; severity follows confidence (0-10)."""
    data = shared.to_json()
    confidence = data.get("confidence")
    severity = round(confidence / 10) if isinstance(confidence, int) else 5
    value = str(data["value"])
    kind = str(data["type"])
    extension = {
        _TYPE_FIELDS.get(
            kind, "fileHash" if kind in {"md5", "sha1", "sha256", "sha512"} else "cs2"
        ): value,
        "cs1Label": "tlp",
        "cs1": str(data["tlp"]),
        "cs3Label": "indicatorType",
        "cs3": kind,
        "externalId": str(data["id"]),
    }
    if isinstance(confidence, int):
        extension["cn1Label"] = "confidence"
        extension["cn1"] = str(confidence)
    tags = data.get("tags")
    if isinstance(tags, list) and tags:
        extension["cs4Label"] = "tags"
        extension["cs4"] = ",".join(str(t) for t in tags)
    rendered = " ".join(f"{key}={_escape_value(item)}" for key, item in extension.items())
    header = "|".join(
        _escape_header(part)
        for part in (
            "DTIM",
            "DTIM",
            __version__,
            f"indicator:{kind}",
            "Threat indicator",
            str(severity),
        )
    )
    return f"CEF:0|{header}|{rendered}"


def syslog_frame(message: str, *, hostname: str = "-", now: datetime | None = None) -> bytes:
    """An RFC 5424 syslog message (facility local0, severity notice) carrying ``message``."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"<133>1 {moment} {hostname} dtim - indicator - {message}".encode()


class CefSender:
    """Sends CEF lines to a syslog collector over UDP; never blocks (fire-and-forget datagrams)."""

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> CefSender:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self._address[0] else socket.AF_INET
        self._transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=self._address, family=family
        )
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._transport is not None:
            self._transport.close()

    def send(self, shared: Shareable) -> None:
        """Send one indicator."""
        if self._transport is not None:
            self._transport.sendto(syslog_frame(format_cef(shared)))


CEF_SENT = "dtim_cef_lines_total"


def octet_counted(frame: bytes) -> bytes:
    """RFC 6587 section 3.4.1 framing: ``<length> <message>``."""
    return str(len(frame)).encode() + b" " + frame


class CefTcpSender:
    """Sends CEF lines to a syslog collector over TCP without ever making the caller wait.

    Args:
        host, port: the collector.
        queue_size: lines held while the collector is slow or away; beyond it they are dropped.
        timeout: seconds allowed to connect and to write one line.
        max_delay: longest pause between reconnection attempts.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        queue_size: int = 1000,
        timeout: float = 5.0,
        max_delay: float = 30.0,
        metrics: Metrics = METRICS,
    ) -> None:
        self._host, self._port = host, port
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(queue_size)
        self._timeout = timeout
        self._max_delay = max_delay
        self._metrics = metrics
        metrics.declare(CEF_SENT, "counter", "CEF syslog lines by transport and outcome.")

    def send(self, shared: Shareable) -> None:
        """Queue one indicator; dropped (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(octet_counted(syslog_frame(format_cef(shared))))
        except asyncio.QueueFull:
            self._metrics.inc(CEF_SENT, transport="tcp", outcome="dropped_queue_full")

    async def run(self) -> None:
        """Connect, write queued lines, reconnect after any failure; until cancelled."""
        delay = 0.5
        pending: bytes | None = None
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    _reader, writer = await asyncio.open_connection(self._host, self._port)
            except (OSError, TimeoutError):
                self._metrics.inc(CEF_SENT, transport="tcp", outcome="connect_failed")
                await asyncio.sleep(delay)
                delay = min(self._max_delay, delay * 2)
                continue
            delay = 0.5
            try:
                while True:
                    if pending is None:
                        pending = await self._queue.get()
                    writer.write(pending)
                    async with asyncio.timeout(self._timeout):
                        await writer.drain()
                    pending = None  # a line that failed mid-write is retried once connected again
                    self._metrics.inc(CEF_SENT, transport="tcp", outcome="sent")
            except (OSError, TimeoutError):
                self._metrics.inc(CEF_SENT, transport="tcp", outcome="write_failed")
            finally:
                writer.close()
                with contextlib.suppress(OSError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await writer.wait_closed()
