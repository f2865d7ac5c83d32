"""Analyst verdicts: the store, the signed tombstone, receivers, relays, the issuer cap, and a
running node's pick-up."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta

import orjson
import pytest

from dtim.aging import DecayModel, Verdict
from dtim.crypto.identity import NodeIdentity, verify_ed25519
from dtim.errors import SignatureError, ValidationError
from dtim.gossip.corroboration import NewReportQuota
from dtim.gossip.inbox import CAPPED_METRIC, Inbox
from dtim.gossip.issuers import IssuerCap
from dtim.gossip.outbox import GOSSIP_SOURCE, reporter_secret
from dtim.gossip.protocol import decode_item
from dtim.gossip.report import ItemId, Report, Tombstone, encode, item_id, verify_tombstone
from dtim.gossip.reputation import Reputation
from dtim.gossip.verdicts import (
    VerdictRecord,
    adopt_verdicts,
    apply_tombstone,
    find_indicator,
    record_verdict,
    sign_tombstone,
)
from dtim.gossip.views import ItemIndex
from dtim.metrics import METRICS
from dtim.model import FakeClock, Indicator, IndicatorId, PeerId, Scope, Tlp, make_indicator
from dtim.model.indicator import VERDICT_FIELD, JsonObject
from dtim.privacy import PrivacyFilter, PrivacyPolicy
from dtim.store import Store
from dtim.store.gossip import GossipStore, StoredItem
from tests.gossip.reports import make_report

MODEL = DecayModel()
VALUE = "45.155.0.7"
ISSUER = NodeIdentity.generate()
PEER = NodeIdentity.generate()
STRANGER = NodeIdentity.generate()
"""An issuer two hops away: not approved by the receiving node."""
APPROVED = frozenset({ISSUER.node_id, PEER.node_id})


def own(clock: FakeClock, value: str = VALUE, **fields: object) -> Indicator:
    fields.setdefault("confidence", 80)
    fields.setdefault("sources", ["manual"])
    return make_indicator(value, "ipv4", now=clock.now(), **fields)  # type: ignore[arg-type]  # test overrides


def index(per_day: int = 100) -> ItemIndex:
    return ItemIndex(
        PrivacyFilter(PrivacyPolicy()),
        MODEL,
        secret=reporter_secret(b"s" * 64),
        verify=verify_tombstone,
        issuers=IssuerCap(per_day, APPROVED.__contains__),
    )


def inbox_for(
    store: Store, clock: FakeClock, held: ItemIndex, reputation: Reputation | None = None
) -> Inbox:
    return Inbox(
        held,
        store,
        GossipStore(store),
        node_id=ISSUER.node_id,
        quota=NewReportQuota(),
        clock=clock,
        reputation=reputation,
    )


async def give(
    store: Store, clock: FakeClock, verdict: Verdict, **options: object
) -> VerdictRecord:
    return await record_verdict(
        store,
        own(clock).id,
        verdict,
        issuer=ISSUER,
        model=MODEL,
        now=clock.now(),
        **options,  # type: ignore[arg-type]  # reason / confidence
    )


async def test_false_positive_marks_the_indicator_and_stores_a_signed_expiring_tombstone(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([own(clock)])
    done = await record_verdict(
        store,
        own(clock).id,
        Verdict.FALSE_POSITIVE,
        issuer=ISSUER,
        model=MODEL,
        now=clock.now(),
        reason="  our own   scanner ",
    )
    assert done.tombstone is not None
    assert done.withheld == ""
    tombstone = done.tombstone
    assert tombstone.issuer == ISSUER.node_id
    assert tombstone.issuer_key == ISSUER.public_key_b64
    assert verify_tombstone(tombstone)
    assert tombstone.tlp is Tlp.GREEN
    assert tombstone.expires - tombstone.issued == MODEL.lifetime("ipv4").total_seconds()
    verify_ed25519(
        ISSUER.public_key_b64, base64.b64decode(tombstone.signature), tombstone.signed_payload()
    )

    stored = await store.get_indicator(own(clock).id)
    assert stored is not None
    field = marked(stored)
    assert field["verdict"] == "false_positive"
    assert field["scope"] == "private"
    assert field["reason"] == "our own scanner"
    assert field["issuer"] == ISSUER.node_id

    kept = await GossipStore(store).items_for([stored.id], int(clock.now().timestamp()))
    assert [bytes(k.item_id) for k in kept] == [item_id(tombstone)]
    assert kept[0].received_from is None
    assert kept[0].relay
    assert decode_item(orjson.loads(kept[0].body)) == tombstone

    history = await store.indicator_events(stored.id)
    assert history[0].action == "verdict"
    assert history[0].detail["verdict"] == "false_positive"
    assert done.to_json()["shared"] is True
    assert done.audit_fields() == {
        "indicator": stored.id,
        "verdict": "false_positive",
        "tombstone": item_id(tombstone).hex(),
    }


async def test_a_later_sighting_does_not_revive_a_false_positive(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([own(clock)])
    await give(store, clock, Verdict.REVOKED)
    clock.advance(3600)
    await store.upsert_indicators([own(clock, confidence=95)])
    stored = await store.get_indicator(own(clock).id)
    assert stored is not None
    assert stored.confidence == 0
    assert stored.scope is Scope.LOCAL
    assert stored.sightings == 2


async def test_a_sighting_after_the_verdict_expired_lifts_it(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([own(clock)])
    await give(store, clock, Verdict.FALSE_POSITIVE)
    clock.advance(MODEL.lifetime("ipv4").total_seconds() + 60)
    await store.upsert_indicators([own(clock, confidence=60)])
    stored = await store.get_indicator(own(clock).id)
    assert stored is not None
    assert stored.confidence == 60
    assert stored.scope is Scope.PRIVATE
    assert VERDICT_FIELD not in stored.custom_fields


async def test_confirmed_pins_the_confidence_and_sends_nothing(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([own(clock, confidence=40)])
    done = await give(store, clock, Verdict.CONFIRMED, confidence=85)
    assert done.tombstone is None
    assert done.expires is None
    await store.upsert_indicators([own(clock, confidence=99)])
    stored = await store.get_indicator(own(clock).id)
    assert stored is not None
    assert stored.confidence == 85
    assert stored.scope is Scope.PRIVATE
    assert await GossipStore(store).items_for([stored.id], 0) == []


async def test_a_verdict_on_an_amber_indicator_stays_on_the_node(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([own(clock, tlp="amber", recipients=["partners"])])
    done = await give(store, clock, Verdict.FALSE_POSITIVE)
    assert done.tombstone is None
    assert "AMBER" in done.withheld
    stored = await store.get_indicator(own(clock).id)
    assert stored is not None
    assert stored.confidence == 0
    assert await GossipStore(store).items_for([stored.id], 0) == []


async def test_a_second_verdict_keeps_the_scope_from_before_the_first(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([own(clock, scope="public", tlp="clear")])
    await give(store, clock, Verdict.FALSE_POSITIVE)
    done = await give(store, clock, Verdict.CONFIRMED, confidence=70)
    assert done.indicator.scope is Scope.PUBLIC
    field = done.indicator.custom_fields[VERDICT_FIELD]
    assert isinstance(field, dict)
    assert field["scope"] == "public"
    assert field["verdict"] == "confirmed"


async def test_bad_input_names_what_is_wrong_and_changes_nothing(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([own(clock)])
    with pytest.raises(ValidationError, match="no indicator"):
        await record_verdict(
            store,
            "0b5e53b5-0000-5000-8000-000000000000",
            Verdict.REVOKED,
            issuer=ISSUER,
            model=MODEL,
            now=clock.now(),
        )
    with pytest.raises(ValidationError, match="reason"):
        await give(store, clock, Verdict.REVOKED, reason="x" * 501)
    with pytest.raises(ValidationError, match="confidence"):
        await give(store, clock, Verdict.CONFIRMED, confidence=101)
    with pytest.raises(ValidationError, match="unknown verdict"):
        Verdict.parse("benign")
    stored = await store.get_indicator(own(clock).id)
    assert stored == own(clock) or (stored is not None and stored.confidence == 80)
    assert VERDICT_FIELD not in (stored.custom_fields if stored else {})
    assert await GossipStore(store).items_for([own(clock).id], 0) == []


async def test_find_indicator_by_id_or_value(store: Store, clock: FakeClock) -> None:
    await store.upsert_indicators([own(clock)])
    assert (await find_indicator(store, own(clock).id)).value == VALUE
    assert (await find_indicator(store, VALUE)).id == own(clock).id
    with pytest.raises(ValidationError, match="no indicator"):
        await find_indicator(store, "45.155.0.8")
    with pytest.raises(ValidationError, match="no indicator"):
        await find_indicator(store, "not an indicator at all")


def peer_tombstone(
    clock: FakeClock,
    *,
    days: int = 30,
    verdict: Verdict = Verdict.FALSE_POSITIVE,
    issuer: NodeIdentity = PEER,
    value: str = VALUE,
) -> Tombstone:
    return sign_tombstone(
        own(clock, value),
        verdict,
        issuer=issuer,
        issued=clock.now(),
        expires=clock.now() + timedelta(days=days),
    )


async def test_apply_tombstone_marks_a_received_indicator_without_the_reason(
    store: Store, clock: FakeClock
) -> None:
    assert await apply_tombstone(store, peer_tombstone(clock), clock.now()) is None  # not stored
    await store.upsert_indicators([own(clock, sources=[GOSSIP_SOURCE])])
    marked = await apply_tombstone(store, peer_tombstone(clock), clock.now())
    assert marked is not None
    assert marked.confidence == 0
    assert marked.scope is Scope.LOCAL
    field = marked.custom_fields[VERDICT_FIELD]
    assert isinstance(field, dict)
    assert field["issuer"] == PEER.node_id
    assert "reason" not in field
    # The same or a shorter tombstone changes nothing; a longer one extends the verdict.
    assert await apply_tombstone(store, peer_tombstone(clock, days=10), clock.now()) == marked
    longer = await apply_tombstone(store, peer_tombstone(clock, days=60), clock.now())
    assert longer is not None
    assert longer.custom_fields[VERDICT_FIELD] != field
    # An expired tombstone does nothing.
    clock.advance(61 * 86400)
    assert await apply_tombstone(store, dead_tombstone(clock), clock.now()) is None


def dead_tombstone(clock: FakeClock) -> Tombstone:
    return sign_tombstone(
        own(clock),
        Verdict.REVOKED,
        issuer=PEER,
        issued=clock.now() - timedelta(days=2),
        expires=clock.now() - timedelta(days=1),
    )


async def test_a_running_node_adopts_a_verdict_given_in_another_process(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([own(clock)])
    seq = await store.last_seq()
    items = GossipStore(store)
    held = index()
    done = await give(store, clock, Verdict.FALSE_POSITIVE)
    tombstone = done.tombstone
    assert tombstone is not None
    changed = await store.changed_since(seq)
    assert await adopt_verdicts(held, store, items, changed, clock.now()) == 1
    assert held.known(item_id(tombstone))
    # The node's own indicator is scope local now; its tombstone still leaves.
    held.set_local(done.indicator)
    view = held.view_for("some-peer", (), clock.now())
    assert list(view.items.values()) == [tombstone]
    assert await adopt_verdicts(held, store, items, changed, clock.now()) == 0


async def test_an_own_sighting_under_a_standing_tombstone_is_marked(
    store: Store, clock: FakeClock
) -> None:
    held = index()
    tombstone = peer_tombstone(clock)
    held.add_received(
        item_id(tombstone), tombstone, relay=True, subject=None, at=clock.now().timestamp()
    )
    seq = await store.last_seq()
    await store.upsert_indicators([own(clock)])
    changed = await store.changed_since(seq)
    assert await adopt_verdicts(held, store, GossipStore(store), changed, clock.now()) == 0
    stored = await store.get_indicator(own(clock).id)
    assert stored is not None
    assert stored.confidence == 0
    assert stored.scope is Scope.LOCAL


async def test_receivers_mark_the_indicator_and_later_reports_do_not_bring_it_back(
    store: Store, clock: FakeClock
) -> None:
    held = index()
    inbox = inbox_for(store, clock, held)

    def report(reporter: str, confidence: int = 90) -> Report:
        return gossip_report(clock, reporter, confidence)

    first = await inbox.accept(PeerId(PEER.node_id), [report("a")], via="push")
    assert first.received == 1
    assert (await store.get_indicator(own(clock).id)) is not None
    receipt = await inbox.accept(PeerId(PEER.node_id), [peer_tombstone(clock)], via="push")
    assert receipt.received == 1
    # Held and passed on to every other peer, like the reports.
    assert held.known(item_id(peer_tombstone(clock)))
    onward = held.view_for("another-peer", (), clock.now()).items.values()
    assert peer_tombstone(clock) in onward
    assert any(isinstance(item, Report) for item in onward)
    stored = await store.get_indicator(own(clock).id)
    assert stored is not None
    assert stored.confidence == 0
    assert stored.scope is Scope.LOCAL
    # More reporters of the same indicator: it stays marked.
    await inbox.accept(PeerId(PEER.node_id), [report("b"), report("c")], via="pull")
    again = await store.get_indicator(own(clock).id)
    assert again is not None
    assert again.confidence == 0
    # A forged tombstone is refused and counted as invalid.
    forged = replace(peer_tombstone(clock, days=5), signature="AAAA")
    assert (await inbox.accept(PeerId(PEER.node_id), [forged], via="push")).invalid == 1


async def test_a_received_tombstone_is_verified_once(store: Store, clock: FakeClock) -> None:
    checked: list[str] = []

    def counting(tombstone: Tombstone) -> bool:
        checked.append(tombstone.indicator)
        return verify_tombstone(tombstone)

    held = ItemIndex(
        PrivacyFilter(PrivacyPolicy()),
        MODEL,
        secret=reporter_secret(b"s" * 64),
        verify=counting,
        issuers=IssuerCap(100, APPROVED.__contains__),
    )
    receipt = await inbox_for(store, clock, held).accept(
        PeerId(PEER.node_id), [peer_tombstone(clock)], via="push"
    )
    assert receipt.received == 1
    assert checked == [own(clock).id]
    # Items loaded from the store are not checked by an inbox: adding them verifies.
    with pytest.raises(SignatureError):
        held.add_received(
            ItemId(b"x" * 32),
            replace(peer_tombstone(clock, days=5), signature="AAAA"),
            relay=True,
            subject=None,
            at=clock.now().timestamp(),
        )


async def test_a_report_arriving_after_the_tombstone_is_not_stored(
    store: Store, clock: FakeClock
) -> None:
    inbox = inbox_for(store, clock, index())
    await inbox.accept(PeerId(PEER.node_id), [peer_tombstone(clock)], via="push")
    late = gossip_report(clock, "d")
    assert (await inbox.accept(PeerId(PEER.node_id), [late], via="push")).received == 1
    assert await store.get_indicator(own(clock).id) is None


async def test_a_verdict_on_a_group_indicator_stays_on_the_node(
    store: Store, clock: FakeClock
) -> None:
    await store.upsert_indicators([own(clock, scope="group", recipients=["partners"])])
    done = await give(store, clock, Verdict.REVOKED)
    assert done.tombstone is None
    assert "scope group" in done.withheld


async def test_damaged_or_foreign_rows_are_not_adopted(store: Store, clock: FakeClock) -> None:
    await store.upsert_indicators([own(clock)])
    seq = await store.last_seq()
    await give(store, clock, Verdict.FALSE_POSITIVE)
    # Signed with a stranger's key but naming this node as issuer: it does not verify.
    signed = sign_tombstone(
        own(clock),
        Verdict.REVOKED,
        issuer=STRANGER,
        issued=clock.now(),
        expires=clock.now() + timedelta(days=1),
    )
    foreign = replace(signed, issuer=ISSUER.node_id)
    rows = [
        StoredItem(
            item_id(foreign),
            foreign.issued,
            foreign.indicator,
            foreign.expires,
            True,
            None,
            0.0,
            encode(foreign),
        ),
        StoredItem(
            b"d" * 32,
            foreign.issued,
            foreign.indicator,
            foreign.expires,
            True,
            None,
            0.0,
            b"{not json",
        ),
    ]
    await GossipStore(store).add_items(rows)
    held = index()
    changed = await store.changed_since(seq)
    assert await adopt_verdicts(held, store, GossipStore(store), changed, clock.now()) == 1
    assert not held.known(item_id(foreign))


def gossip_report(
    clock: FakeClock, reporter: str, confidence: int = 90, value: str = VALUE
) -> Report:
    """A GREEN report of ``value`` as a peer delivers it."""
    bucket = int(clock.now().timestamp()) // 3600 * 3600
    return make_report(
        value,
        bucket=bucket,
        confidence=confidence,
        reporter=reporter * 32,
        expires=bucket + 86400 * 30,
    )


def marked(stored: Indicator | None) -> JsonObject:
    """The verdict field of an indicator a suppressing verdict marked."""
    assert stored is not None
    assert stored.confidence == 0
    assert stored.scope is Scope.LOCAL
    field = stored.custom_fields[VERDICT_FIELD]
    assert isinstance(field, dict)
    return field


async def verdict_of(store: Store, clock: FakeClock, value: str) -> object:
    stored = await store.get_indicator(own(clock, value).id)
    assert stored is not None
    return stored.custom_fields.get(VERDICT_FIELD)


async def test_a_relayed_tombstone_from_an_unapproved_issuer_is_applied_and_relayed_on(
    store: Store, clock: FakeClock
) -> None:
    held = index()
    inbox = inbox_for(store, clock, held)
    await inbox.accept(PeerId(PEER.node_id), [gossip_report(clock, "a")], via="pull")
    # STRANGER is two hops away: PEER (approved) relays its verdict.
    relayed = peer_tombstone(clock, issuer=STRANGER)
    receipt = await inbox.accept(PeerId(PEER.node_id), [relayed], via="pull")
    assert (receipt.received, receipt.invalid, receipt.capped) == (1, 0, 0)
    field = marked(await store.get_indicator(own(clock).id))
    assert field["issuer"] == STRANGER.node_id  # the operator sees who decided
    # Passed on to every other peer, and stored to be passed on after a restart.
    assert relayed in held.view_for("another-peer", (), clock.now()).items.values()
    rows = await GossipStore(store).items_for([own(clock).id], int(clock.now().timestamp()))
    assert [row.relay for row in rows if bytes(row.item_id) == item_id(relayed)] == [True]


async def test_a_tombstone_whose_key_does_not_name_its_issuer_is_refused_against_the_sender(
    store: Store, clock: FakeClock
) -> None:
    reputation = Reputation(clock)
    reputation.approve(PeerId(PEER.node_id))
    held = index()
    inbox = inbox_for(store, clock, held, reputation)
    await inbox.accept(PeerId(PEER.node_id), [gossip_report(clock, "a")], via="pull")
    genuine = peer_tombstone(clock, issuer=STRANGER)
    pinned = replace(genuine, issuer=ISSUER.node_id)  # a stranger's verdict passed off as ours
    swapped = replace(genuine, issuer_key=PEER.public_key_b64)  # another key for the issuer
    receipt = await inbox.accept(PeerId(PEER.node_id), [pinned, swapped], via="push")
    assert (receipt.received, receipt.invalid) == (0, 2)
    assert not held.known(item_id(pinned))
    assert not held.known(item_id(swapped))
    assert reputation.standing(PeerId(PEER.node_id)).parts["invalid"] < 0
    assert await verdict_of(store, clock, VALUE) is None


async def test_an_unapproved_issuers_tombstones_beyond_the_daily_cap_are_relayed_not_applied(
    store: Store, clock: FakeClock
) -> None:
    held = index(per_day=2)
    inbox = inbox_for(store, clock, held)
    sender = PeerId(PEER.node_id)
    values = ["45.155.0.11", "45.155.0.12", "45.155.0.13", "45.155.0.14"]
    await inbox.accept(sender, [gossip_report(clock, "a", value=v) for v in values], via="pull")
    before = METRICS.value(CAPPED_METRIC)
    stones = [peer_tombstone(clock, issuer=STRANGER, value=v) for v in values[:3]]
    receipt = await inbox.accept(sender, stones, via="pull")
    assert (receipt.received, receipt.capped) == (3, 1)
    assert METRICS.value(CAPPED_METRIC) - before == 1
    assert [await verdict_of(store, clock, v) is not None for v in values[:3]] == [
        True,
        True,
        False,
    ]
    # Held and relayed all the same, so every node holds the same items; the merged
    # view (the CRDT) has the verdict, only this node's indicator is left alone.
    onward = held.view_for("another-peer", (), clock.now()).items.values()
    assert all(stone in onward for stone in stones)
    capped = IndicatorId(own(clock, values[2]).id)
    merged = held.merged(capped, clock.now())
    assert merged is not None
    assert merged.verdict is Verdict.FALSE_POSITIVE
    assert held.standing(capped, clock.now()) == ()
    # Later reports of the capped indicator are written as usual.
    await inbox.accept(sender, [gossip_report(clock, "b", value=values[2])], via="pull")
    row = await store.get_indicator(capped)
    assert row is not None
    assert row.confidence > 0
    # An approved issuer's verdicts are never capped.
    approved = peer_tombstone(clock, issuer=PEER, value=values[3])
    assert (await inbox.accept(sender, [approved], via="pull")).capped == 0
    assert await verdict_of(store, clock, values[3]) is not None
    # The next day the stranger has a fresh allowance.
    clock.advance(86400)
    later = peer_tombstone(clock, issuer=STRANGER, value=values[2], days=20)
    assert (await inbox.accept(sender, [later], via="pull")).capped == 0
    assert await verdict_of(store, clock, values[2]) is not None


def test_the_issuer_cap_counts_per_issuer_and_day() -> None:
    cap = IssuerCap(1, PEER.node_id.__eq__)
    day = 20_000 * 86400
    assert cap.admit(STRANGER.node_id, day + 10)
    assert not cap.admit(STRANGER.node_id, day + 20)
    assert cap.admit(ISSUER.node_id, day + 30)  # another issuer, its own allowance
    assert all(cap.admit(PEER.node_id, day + 40) for _ in range(5))  # approved: no cap
    assert cap.admit(STRANGER.node_id, day + 86400)
    # 0: only approved issuers' verdicts apply (a node that follows its peers only).
    strict = IssuerCap(0, PEER.node_id.__eq__)
    assert not strict.admit(STRANGER.node_id, day)
    assert strict.admit(PEER.node_id, day)
