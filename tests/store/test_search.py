"""Dashboard search: prefix, address and CIDR containment, filters, keyset pages, history."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.errors import ValidationError
from dtim.model import make_indicator
from dtim.store import IndicatorEvent, IndicatorSearch, IndicatorSummary, SortKey, Store
from dtim.store.netkeys import indicator_range, network_range
from dtim.store.rows import from_epoch

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _fill(store: Store) -> None:
    await store.upsert_indicators(
        [
            make_indicator("198.51.100.7", now=NOW, confidence=90, sources=["ufw"]),
            make_indicator("198.51.100.200", now=NOW, confidence=40, sources=["fail2ban"]),
            make_indicator("198.51.0.0/16", now=NOW, confidence=70, sources=["peer"]),
            make_indicator("203.0.113.9", now=NOW - timedelta(days=20), confidence=60, tlp="amber"),
            make_indicator("2001:db8::1", now=NOW, confidence=50),
            make_indicator("evil.example", now=NOW, confidence=80, sources=["nginx_access"]),
            make_indicator("evil.example.net", now=NOW, confidence=30),
            make_indicator("https://evil.example/login", now=NOW, confidence=20),
        ]
    )


async def _values(store: Store, **kwargs: object) -> list[str]:
    page = await store.search_indicators(IndicatorSearch(**kwargs))  # type: ignore[arg-type]  # test shorthand
    return sorted(i.value for i in page.items)


def test_network_keys_sort_like_numbers() -> None:
    assert network_range("10.0.0.0/8") == ("40a000000", "40affffff")
    assert network_range("not an ip") is None
    assert indicator_range("domain", "10.0.0.1") == (None, None)
    lo6, _ = network_range("::1") or ("", "")
    assert lo6.startswith("6")
    assert len(lo6) == 33
    assert network_range("9.255.255.255")[0] < network_range("10.0.0.0")[0]  # type: ignore[index]  # both parse


@given(st.ip_addresses())
def test_address_keys_match_the_network_keys_of_the_address(address: object) -> None:
    value = str(address)
    kind = "ipv4" if ":" not in value else "ipv6"
    assert indicator_range(kind, value) == network_range(value)


async def test_prefix_address_and_network_modes(store: Store) -> None:
    await _fill(store)
    assert await _values(store, text="evil.example") == [
        "evil.example",
        "evil.example.net",
    ]
    assert await _values(store, text="hxxps://evil[.]example/") == ["https://evil.example/login"]
    page = await store.search_indicators(IndicatorSearch(text="198.51.100.0/24"))
    assert page.mode == "network"
    assert sorted(i.value for i in page.items) == ["198.51.100.200", "198.51.100.7"]
    assert await _values(store, text="198.51.0.0/15") == [
        "198.51.0.0/16",
        "198.51.100.200",
        "198.51.100.7",
    ]
    page = await store.search_indicators(IndicatorSearch(text="198.51.100.7"))
    assert page.mode == "address"
    assert sorted(i.value for i in page.items) == ["198.51.0.0/16", "198.51.100.7"]
    assert await _values(store, text="2001:db8::/32") == ["2001:db8::1"]


async def test_filters(store: Store) -> None:
    await _fill(store)
    assert await _values(store, type="domain") == ["evil.example", "evil.example.net"]
    assert await _values(store, tlp="amber") == ["203.0.113.9"]
    assert await _values(store, source="fail2ban") == ["198.51.100.200"]
    assert await _values(store, min_confidence=80) == ["198.51.100.7", "evil.example"]
    assert await _values(store, max_confidence=20) == ["https://evil.example/login"]
    assert "203.0.113.9" not in await _values(store, seen_after=NOW - timedelta(days=7))


@pytest.mark.parametrize("sort", list(SortKey))
@pytest.mark.parametrize("descending", [True, False])
async def test_keyset_pages_visit_every_row_once_in_order(
    store: Store, sort: SortKey, descending: bool
) -> None:
    await store.upsert_indicators(
        [
            make_indicator(
                f"192.0.2.{n}", now=NOW + timedelta(minutes=n % 7), confidence=n % 5 * 20
            )
            for n in range(37)
        ]
    )
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.search_indicators(
            IndicatorSearch(sort=sort, descending=descending, cursor=cursor, limit=10)
        )
        seen += [i.value for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 37 == len(set(seen))
    if sort is SortKey.CONFIDENCE:
        rows = [await store.find_indicator("ipv4", v) for v in seen]
        confidences = [r.confidence for r in rows if r]
        assert confidences == sorted(confidences, reverse=descending)


@pytest.mark.parametrize("sort", [SortKey.CHANGED, SortKey.FIRST_SEEN, SortKey.VALUE])
async def test_summaries_are_the_same_pages_as_whole_indicators(
    store: Store, sort: SortKey
) -> None:
    await _fill(store)
    search = IndicatorSearch(sort=sort, limit=3)
    for _ in range(3):  # three pages of three, the last one short
        whole = await store.search_indicators(search)
        summary = await store.search_indicator_summaries(search)
        assert summary.next_cursor == whole.next_cursor
        assert summary.mode == whole.mode
        # last_seen as stored, seconds since the epoch: the whole indicator's is made from it
        assert [from_epoch(s.last_seen) for s in summary.items] == [
            i.last_seen for i in whole.items
        ]
        assert tuple(s._replace(last_seen=0.0) for s in summary.items) == tuple(
            IndicatorSummary(
                i.id,
                i.type,
                i.value,
                i.tlp.value,
                i.confidence,
                i.sightings,
                i.sources,
                0.0,
            )
            for i in whole.items
        )
        search = replace(search, cursor=whole.next_cursor)
    assert whole.next_cursor is None
    assert len(whole.items) == 2


async def test_bad_cursor_and_limit_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="cursor"):
        await store.search_indicators(IndicatorSearch(cursor="garbage!!"))
    with pytest.raises(ValidationError, match="limit"):
        await store.search_indicators(IndicatorSearch(limit=0))
    with pytest.raises(ValidationError, match="cursor"):
        await store.search_indicator_summaries(IndicatorSearch(cursor="garbage!!"))


async def test_a_cursor_of_one_order_is_refused_in_another(store: Store) -> None:
    await _fill(store)
    by_value = await store.search_indicators(IndicatorSearch(sort=SortKey.VALUE, limit=2))
    assert by_value.next_cursor is not None
    for other in (SortKey.CONFIDENCE, SortKey.LAST_SEEN):
        with pytest.raises(ValidationError, match="does not belong to a"):
            await store.search_indicators(IndicatorSearch(sort=other, cursor=by_value.next_cursor))


@pytest.mark.parametrize(
    ("sort", "forged"),
    [
        (SortKey.CONFIDENCE, b"[3000000000,5]"),  # past PostgreSQL's integer
        (SortKey.CONFIDENCE, b"[9223372036854775808,5]"),  # past SQLite's
        (SortKey.CONFIDENCE, b"[true,5]"),
        (SortKey.VALUE, b'["a\\u0000b",5]'),  # PostgreSQL text holds no NUL
        (SortKey.LAST_SEEN, b'["yesterday",5]'),
        (SortKey.CHANGED, b"[1,9223372036854775808]"),
    ],
)
async def test_forged_cursors_are_bad_input_not_database_errors(
    store: Store, sort: SortKey, forged: bytes
) -> None:
    await _fill(store)
    cursor = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    with pytest.raises(ValidationError, match="cursor"):
        await store.search_indicator_summaries(IndicatorSearch(sort=sort, cursor=cursor))


async def test_stats_and_history(store: Store) -> None:
    await _fill(store)
    stats = await store.indicator_stats(
        since=NOW - timedelta(days=7), local_sources=["ufw", "fail2ban", "nginx_access"]
    )
    assert sum(stats.confidence_histogram) == 8
    assert stats.confidence_histogram[9] == 1  # 90
    assert stats.by_origin == {"local": 3, "received": 5}
    assert {h.source for h in stats.hourly} >= {"ufw", "peer", "unknown"}
    assert all(h.hour >= NOW - timedelta(days=7, hours=1) for h in stats.hourly)
    one = make_indicator("evil.example", now=NOW)
    await store.add_indicator_event(
        IndicatorEvent(one.id, NOW, "edited", "admin", {"tlp": "amber"})
    )
    await store.add_indicator_event(
        IndicatorEvent(one.id, NOW + timedelta(seconds=1), "edited", "admin", {"tlp": "red"})
    )
    events = await store.indicator_events(one.id)
    assert [e.detail["tlp"] for e in events] == ["red", "amber"]
