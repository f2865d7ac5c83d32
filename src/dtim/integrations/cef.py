"""Indicators as ArcSight CEF lines over syslog (UDP, RFC 5424 framing) for SIEMs."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

from dtim import __version__
from dtim.privacy import Shareable

_TYPE_FIELDS = {"ipv4": "src", "ipv6": "c6a2", "domain": "dhost", "url": "request", "email": "suser"}


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
        _TYPE_FIELDS.get(kind, "fileHash" if kind in {"md5", "sha1", "sha256", "sha512"} else "cs2"): value,
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
    header = "|".join(_escape_header(part) for part in ("DTIM", "DTIM", __version__, f"indicator:{kind}", "Threat indicator", str(severity)))
    return f"CEF:0|{header}|{rendered}"


def syslog_frame(message: str, *, hostname: str = "-", now: datetime | None = None) -> bytes:
    """An RFC 5424 syslog message (facility local0, severity notice) carrying ``message``."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"<133>1 {moment} {hostname} dtim - indicator - {message}".encode()


class CefSender:
    """Sends CEF lines to a syslog collector over UDP; never blocks (datagrams are fire-and-forget)."""

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> CefSender:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self._address[0] else socket.AF_INET
        self._transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=self._address, family=family)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._transport is not None:
            self._transport.close()

    def send(self, shared: Shareable) -> None:
        """Send one indicator."""
        if self._transport is not None:
            self._transport.sendto(syslog_frame(format_cef(shared)))
