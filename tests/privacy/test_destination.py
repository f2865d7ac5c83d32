"""Destinations: peers, groups, consumers and the public."""

from __future__ import annotations

import pytest

from dtim.errors import ValidationError
from dtim.model import Tlp
from dtim.privacy import Destination, DestinationKind, PrivacyLevel


def test_constructors() -> None:
    peer = Destination.peer(" peer-a ", ["team-x"], level=PrivacyLevel.OPEN)
    assert (peer.kind, peer.name, peer.groups, peer.level) == (
        DestinationKind.PEER,
        "peer-a",
        frozenset({"team-x"}),
        PrivacyLevel.OPEN,
    )
    assert peer.tlps == frozenset(Tlp)
    group = Destination.group(" team-x ")
    assert (group.name, group.groups) == ("team-x", frozenset({"team-x"}))
    consumer = Destination.consumer("siem", tlps=[Tlp.CLEAR])
    assert consumer.kind is DestinationKind.CONSUMER
    assert consumer.tlps == frozenset({Tlp.CLEAR})
    assert Destination.consumer("siem").tlps == frozenset({Tlp.CLEAR, Tlp.GREEN})
    public = Destination.public()
    assert public.tlps == frozenset({Tlp.CLEAR})


def test_describe() -> None:
    assert Destination.peer("p").describe() == "peer:p"
    assert Destination.group("g").describe() == "group:g"
    assert Destination.consumer("c").describe() == "consumer:c"
    assert Destination.public().describe() == "public"


def test_parse() -> None:
    assert Destination.parse("PUBLIC") == Destination.public()
    assert Destination.parse("group:team-x") == Destination.group("team-x")
    assert Destination.parse("consumer:siem", ["g"]) == Destination.consumer("siem", groups=["g"])
    assert Destination.parse("peer-a", ["g"], level=PrivacyLevel.STRICT) == Destination.peer(
        "peer-a", ["g"], level=PrivacyLevel.STRICT
    )


@pytest.mark.parametrize("raw", ["", "  ", "group:", "consumer: "])
def test_empty_names_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        Destination.parse(raw)
