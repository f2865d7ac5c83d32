from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

from dtim.integrations.cef import CefSender, format_cef
from dtim.model import make_indicator
from dtim.privacy import Destination, PrivacyFilter, PrivacyLevel, PrivacyPolicy

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def shared(value: str, **kwargs: object) -> object:
    item = make_indicator(value, now=NOW, **kwargs)  # type: ignore[arg-type]
    result = PrivacyFilter(PrivacyPolicy()).share(
        item, Destination.consumer("siem", level=PrivacyLevel.OPEN)
    )
    assert result is not None
    return result


def test_cef_fields_and_escaping() -> None:
    line = format_cef(shared("45.13.7.9", confidence=80, tags=["brute-force"]))  # type: ignore[arg-type]
    assert line.startswith("CEF:0|DTIM|DTIM|")
    assert "|indicator:ipv4|Threat indicator|8|" in line
    assert "src=45.13.7.9" in line
    assert "cs1=green" in line
    assert "cn1=80" in line
    assert "cs4=brute-force" in line
    url_line = format_cef(shared("http://malware-c2.xyz/a=b"))  # type: ignore[arg-type]
    assert r"request=http://malware-c2.xyz/a\=b" in url_line


async def test_sender_delivers_over_udp() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        async with CefSender("127.0.0.1", collector.getsockname()[1]) as sender:
            sender.send(shared("malware-c2.xyz"))  # type: ignore[arg-type]
            data = await asyncio.to_thread(collector.recv, 4096)
    assert data.startswith(b"<133>1 ")
    assert b"CEF:0|DTIM|DTIM|" in data
    assert b"dhost=malware-c2.xyz" in data
