"""Range-based set reconciliation: always the union, few round trips, small frames."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtim.errors import ProtocolError
from dtim.gossip.protocol import MAX_FRAME, Header, Message, Mode, Range, encode_message
from dtim.gossip.ranges import MAX_BOUND, Key, SortedItems
from dtim.gossip.reconcile import Params, Session, converse

ids = st.binary(min_size=32, max_size=32)
keys = st.tuples(
    st.integers(1_700_000_000, 1_700_000_000 + 20 * 3600).map(lambda t: t - t % 3600), ids
)
params = st.builds(
    Params,
    fingerprint_size=st.sampled_from([4, 8, 16]),
    hash_size=st.sampled_from([4, 8]),
    leaf_size=st.integers(1, 12),
    min_branches=st.integers(2, 16),
    top_branches=st.integers(16, 64),
    expansion=st.floats(1.0, 4.0),
    frame_limit=st.sampled_from([1024, 4096, MAX_FRAME]),
)


@settings(max_examples=80)
@given(
    shared=st.lists(keys, max_size=300, unique=True),
    left=st.lists(keys, max_size=60, unique=True),
    right=st.lists(keys, max_size=60, unique=True),
    tuning=params,
)
def test_any_two_sets_reconcile_to_their_union(
    shared: list[Key], left: list[Key], right: list[Key], tuning: Params
) -> None:
    a, b = SortedItems(shared + left), SortedItems(shared + right)
    only_a = {i for k, i in set(left) - set(shared) - set(right)}
    only_b = {i for k, i in set(right) - set(shared) - set(left)}
    transcript = converse(a, b, params=tuning)
    assert transcript.to_responder == only_a
    assert transcript.to_initiator == only_b
    assert all(size <= tuning.frame_limit for size in transcript.messages)


def _keys(rng: random.Random, count: int) -> list[Key]:
    return [(1_700_000_000 + 3600 * rng.randrange(720), rng.randbytes(32)) for _ in range(count)]


@pytest.mark.parametrize("split", ["initiator", "responder", "both"])
def test_a_hundred_new_reports_in_ten_thousand_take_few_round_trips(split: str) -> None:
    rng = random.Random(7)
    shared, new = _keys(rng, 10_000), _keys(rng, 100)
    left, right = {"initiator": (new, []), "responder": ([], new), "both": (new[:50], new[50:])}[
        split
    ]
    transcript = converse(SortedItems(shared + left), SortedItems(shared + right), salt=b"0" * 16)
    assert len(transcript.to_responder) == len(left)
    assert len(transcript.to_initiator) == len(right)
    assert transcript.round_trips <= 4
    assert transcript.bytes <= 2.5 * 100 * 32 + 4096


def test_idle_session_is_one_small_message_each_way() -> None:
    shared = _keys(random.Random(3), 5000)
    transcript = converse(SortedItems(shared), SortedItems(shared))
    assert len(transcript.messages) == 1
    assert transcript.messages[0] < 64
    assert transcript.round_trips == 1


def test_empty_and_brand_new_peers_converge_the_same_way() -> None:
    everything = _keys(random.Random(5), 3000)
    transcript = converse(SortedItems(), SortedItems(everything))
    assert len(transcript.to_initiator) == 3000
    transcript = converse(SortedItems(everything), SortedItems())
    assert len(transcript.to_responder) == 3000
    assert converse(SortedItems(), SortedItems()).messages == (24,)


def test_a_per_peer_view_never_fingerprints_hidden_items() -> None:
    rng = random.Random(9)
    shared = _keys(rng, 500)
    secret = _keys(rng, 20)
    mine = SortedItems(shared + secret)
    hidden = {key for key in secret}
    view = mine.filtered(lambda key: key not in hidden)
    transcript = converse(view, SortedItems(shared))
    assert transcript.to_responder == frozenset()
    assert len(transcript.messages) == 1


def test_oversized_answers_fold_the_rest_into_one_fingerprint() -> None:
    rng = random.Random(11)
    shared = _keys(rng, 4000)
    tight = Params(frame_limit=1024, top_branches=200)
    left, right = SortedItems(shared + _keys(rng, 100)), SortedItems(shared + _keys(rng, 100))
    transcript = converse(left, right, params=tight, max_messages=400)
    assert max(transcript.messages) <= 1024
    assert len(transcript.to_responder) == len(transcript.to_initiator) == 100


def test_session_rules_are_enforced() -> None:
    source = SortedItems(_keys(random.Random(1), 50))
    first = Session(source)
    assert first.header is None
    opening = first.initiate()
    assert first.header is not None
    with pytest.raises(ProtocolError, match="already started"):
        first.initiate()
    with pytest.raises(ProtocolError, match="header repeated"):
        first.reconcile(opening)
    second = Session(source)
    assert second.reconcile(opening).reply is None
    assert second.done
    with pytest.raises(ProtocolError, match="after the end"):
        second.reconcile(opening)
    fresh = Session(source)
    with pytest.raises(ProtocolError, match="no session header"):
        fresh.reconcile(encode_message(Message((Range(MAX_BOUND, Mode.SKIP),)), Header(b"s" * 16)))
    with pytest.raises(ValueError, match="branches"):
        Params(min_branches=1)
    with pytest.raises(ValueError, match="frame_limit"):
        Params(frame_limit=100)


def test_need_for_unknown_hashes_is_ignored() -> None:
    source = SortedItems(_keys(random.Random(2), 3))
    header = Header(b"s" * 16)
    responder = Session(source)
    message = Message((Range(MAX_BOUND, Mode.NEED, hashes=(b"zzzz",)),), header)
    step = responder.reconcile(encode_message(message, header))
    assert step.reply is None
    assert step.have == ()


def test_converse_gives_up_on_endless_sessions() -> None:
    rng = random.Random(4)
    with pytest.raises(ProtocolError, match="within 2 messages"):
        converse(SortedItems(_keys(rng, 100)), SortedItems(_keys(rng, 100)), max_messages=2)


def test_without_single_difference_decoding_it_still_converges() -> None:
    rng = random.Random(6)
    shared, extra = _keys(rng, 500), _keys(rng, 1)
    transcript = converse(
        SortedItems(shared), SortedItems(shared + extra), params=Params(decode_limit=1)
    )
    assert transcript.to_initiator == {extra[0][1]}
    assert (
        transcript.round_trips
        > converse(SortedItems(shared), SortedItems(shared + extra)).round_trips
    )
