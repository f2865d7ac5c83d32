"""The TAXII feed over the real store (SQLite; PostgreSQL too where a test takes ``store_url``),
and TAXII features beyond the client suite."""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
import trustme
from starlette.types import Receive, Scope, Send

from dtim.model import Indicator, Tlp, make_indicator
from dtim.store import Store
from dtim.taxii.accounts import AccountBook, make_account
from dtim.taxii.backend import FeedFilter, FeedPage
from dtim.taxii.collections import find_collection
from dtim.taxii.server import TaxiiServer, TaxiiSettings
from dtim.taxii.wiring import StoreFeed, privacy_acceptor
from tests.taxii.conftest import PASSWORD, START, privacy_filter, sample_indicators, sharer

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(f"sqlite:///{tmp_path / 'dtim.db'}") as opened:
        yield opened


async def test_store_feed_pages_in_change_order_and_filters(store: Store) -> None:
    feed = StoreFeed(store, batch=50)
    assert await feed.ingest(sample_indicators(120)) == 120
    await feed.ingest(sample_indicators(10, tlp=Tlp.AMBER, start=500))
    where = FeedFilter(tlps=frozenset({Tlp.GREEN}))
    seen: list[str] = []
    after = 0
    while True:
        page = await feed.page(after, 40, where)
        seen.extend(r.indicator.id for r in page.records)
        seqs = [r.seq for r in page.records]
        assert seqs == sorted(seqs)
        after = page.scanned_to
        if not page.more:
            break
    assert len(seen) == len(set(seen)) == 120
    one = sample_indicators(1, start=3)[0]
    record = await feed.get(one.id)
    assert record is not None
    assert record.indicator.value == one.value
    by_id = await feed.page(0, 10, FeedFilter(tlps=frozenset(Tlp), ids=frozenset({one.id})))
    assert [r.indicator.id for r in by_id.records] == [one.id]


async def test_taxii_over_the_store_serves_open_level_with_sightings(
    store: Store, book: AccountBook
) -> None:
    feed = StoreFeed(store)
    await feed.ingest(sample_indicators(15))
    server = TaxiiServer(
        feed, sharer(), book, TaxiiSettings(), accept=privacy_acceptor(privacy_filter())
    )
    green = find_collection("tlp-green")
    assert green is not None
    token = base64.b64encode(f"opener:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Accept": TAXII}
    transport = httpx.ASGITransport(app=server.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get(f"/api/collections/{green.id}/objects/?limit=7", headers=headers)
        body = response.json()
        objects = list(body["objects"])
        while body.get("more"):
            response = await http.get(
                f"/api/collections/{green.id}/objects/?limit=7&next={body['next']}", headers=headers
            )
            body = response.json()
            objects.extend(body["objects"])
    kinds = [o["type"] for o in objects]
    assert kinds.count("indicator") == 15
    assert kinds.count("sighting") == 15
    assert len({o["id"] for o in objects}) == len(objects)
    indicators = [o for o in objects if o["type"] == "indicator"]
    assert all(o["labels"] == ["ssh-bruteforce"] for o in indicators)


async def test_nul_characters_are_bad_requests_on_every_backend(
    store_url: str, book: AccountBook
) -> None:
    # PostgreSQL cannot hold U+0000 in text: an object id with one failed there with a 500.
    async with Store(store_url) as backend:
        feed = StoreFeed(backend)
        await feed.ingest(sample_indicators(3))
        server = TaxiiServer(feed, sharer(), book, TaxiiSettings())
        green = find_collection("tlp-green")
        assert green is not None
        objects = f"/api/collections/{green.id}/objects/"
        token = base64.b64encode(f"opener:{PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Accept": TAXII}
        transport = httpx.ASGITransport(app=server.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for path, params, title in (
                (objects + "indicator--a%00b/", {}, "Bad object"),
                (objects + "indicator--a%00b/versions/", {}, "Bad object"),
                (objects, {"match[id]": "indicator--a\x00b"}, "Bad match[id]"),
            ):
                refused = await http.get(path, params=params, headers=headers)
                assert refused.status_code == 400, refused.text
                assert refused.json() == {
                    "title": title,
                    "description": f"{title[4:]}: must not contain a NUL character",
                    "http_status": "400",
                }
            served = await http.get(objects, headers=headers)
            assert served.status_code == 200
            kinds = [o["type"] for o in served.json()["objects"]]
            assert kinds.count("indicator") == 3


async def test_amber_collection_serves_only_listed_recipients(
    book: AccountBook, tmp_path: Path
) -> None:
    from dtim.model import FakeClock
    from dtim.taxii.backend import MemoryFeed

    feed = MemoryFeed(FakeClock(START))
    feed.add(
        [
            make_indicator("bad-actor-c2.net", now=START, tlp=Tlp.AMBER, recipients=["isac"]),
            make_indicator("other-c2.net", now=START, tlp=Tlp.AMBER, recipients=["someone-else"]),
        ]
    )
    server = TaxiiServer(feed, sharer(), book)
    amber = find_collection("tlp-amber")
    assert amber is not None
    token = base64.b64encode(f"opener:{PASSWORD}".encode()).decode()
    transport = httpx.ASGITransport(app=server.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get(
            f"/api/collections/{amber.id}/objects/?match[type]=indicator",
            headers={"Authorization": f"Basic {token}", "Accept": TAXII},
        )
    assert [o["name"] for o in response.json()["objects"]] == ["bad-actor-c2.net"]


async def test_client_certificate_login(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("siem.example")
    pem = cert.cert_chain_pems[0].bytes().decode()
    fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    book = AccountBook(tmp_path / "users.json")
    book.add(make_account("siem", None, cert_fingerprints=[fingerprint]))
    server = TaxiiServer(StoreFeedless(), sharer(), book)
    app = server.app()

    async def with_tls(scope: Scope, receive: Receive, send: Send) -> None:
        # What an ASGI server implementing the TLS extension reports for a verified client.
        scope = {**scope, "extensions": {"tls": {"client_cert_chain": [pem]}}}
        await app(scope, receive, send)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=with_tls), base_url="http://t"
    ) as http:
        listed = await http.get("/api/collections/", headers={"Accept": TAXII})
    assert listed.status_code == 200
    assert {c["alias"] for c in listed.json()["collections"]} == {"public", "tlp-green"}
    other = trustme.CA().issue_cert("x.example").cert_chain_pems[0].bytes().decode()

    async def stranger(scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "extensions": {"tls": {"client_cert_chain": [other]}}}
        await app(scope, receive, send)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stranger), base_url="http://t"
    ) as http:
        refused = await http.get("/api/collections/", headers={"Accept": TAXII})
    assert refused.status_code == 401


class StoreFeedless:
    """A feed with nothing in it (collections listing does not read it)."""

    async def page(self, after_seq: int, limit: int, where: FeedFilter) -> FeedPage:
        raise AssertionError("not read")

    async def get(self, indicator_id: str) -> None:
        return None

    async def ingest(self, indicators: Sequence[Indicator]) -> int:
        raise AssertionError("not written")
