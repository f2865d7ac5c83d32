"""Fixtures for the TAXII tests: a feed, a privacy stand-in, accounts, and uvicorn on loopback."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from dtim.model import FakeClock, Indicator, Tlp, make_indicator
from dtim.privacy import PrivacyFilter, PrivacyPolicy
from dtim.taxii.accounts import AccountBook, make_account
from dtim.taxii.backend import MemoryFeed
from dtim.taxii.server import TaxiiServer, TaxiiSettings
from dtim.taxii.wiring import PrivacySharer, privacy_acceptor
from tests.servers import loopback_socket

START = datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@functools.cache
def privacy_filter() -> PrivacyFilter:
    """The real privacy filter, custom field ``asn`` allowed at open."""
    return PrivacyFilter(
        PrivacyPolicy(allow_custom_fields=True, allowed_custom_fields=frozenset({"asn"}))
    )


def sharer() -> PrivacySharer:
    """The real privacy filter behind the TAXII Sharer protocol; aging stand-in: 30 days."""
    return PrivacySharer(privacy_filter(), lambda i: i.last_seen + timedelta(days=30))


def sample_indicators(count: int, *, tlp: Tlp = Tlp.GREEN, start: int = 0) -> list[Indicator]:
    """``count`` distinct IPv4 indicators."""
    return [
        make_indicator(
            f"198.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
            "ipv4",
            now=START,
            tags=["ssh-bruteforce"],
            tlp=tlp,
            confidence=80,
        )
        for i in range(start, start + count)
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="session")
def book(tmp_path_factory: pytest.TempPathFactory) -> AccountBook:
    """Read-only accounts shared by the session: Argon2 hashing takes most of a second each."""
    accounts = AccountBook(tmp_path_factory.mktemp("taxii") / "taxii-users.json")
    accounts.add(make_account("reader", PASSWORD, level="moderate", tlps=["green"]))
    accounts.add(
        make_account("opener", PASSWORD, level="open", tlps=["green", "amber"], groups=["isac"])
    )
    accounts.add(make_account("writer", PASSWORD, level="strict", tlps=["green"], can_write=True))
    accounts.save()
    return AccountBook(accounts.path).load()


@pytest.fixture
def feed(clock: FakeClock) -> MemoryFeed:
    return MemoryFeed(clock)


@pytest.fixture
def server(feed: MemoryFeed, book: AccountBook, clock: FakeClock) -> TaxiiServer:
    return TaxiiServer(
        feed,
        sharer(),
        book,
        TaxiiSettings(max_content_length=64 * 1024),
        clock,
        accept=privacy_acceptor(privacy_filter()),
    )


@dataclass
class Running:
    url: str
    server: TaxiiServer


@pytest.fixture
def running(server: TaxiiServer) -> Iterator[Running]:
    """The TAXII app mounted at /taxii2 under uvicorn on 127.0.0.1, a free port."""
    app = Starlette(routes=[Mount("/taxii2", app=server.app())])
    sock = loopback_socket()
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = sock.getsockname()[1]
    try:
        yield Running(f"http://127.0.0.1:{port}/taxii2/", server)
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()
