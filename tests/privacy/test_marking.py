"""TLP and scope enforcement, case by case and as properties."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.model import Indicator, Scope, Tlp
from dtim.privacy import Destination, DestinationKind, WithholdReason, check_reach
from tests.privacy.conftest import MakeIndicator, indicator

PEER_A = Destination.peer("peer-a", ["team-x"])
PEER_B = Destination.peer("peer-b")
TEAM_X = Destination.group("team-x")
TEAM_Y = Destination.group("team-y")
SIEM = Destination.consumer("siem")
SIEM_ALL = Destination.consumer("siem", tlps=list(Tlp), groups=["team-x"])
PUBLIC = Destination.public()


@pytest.mark.parametrize(
    ("tlp", "scope", "recipients", "destination", "expected"),
    [
        # CLEAR is public unless scoped local or to a group.
        ("clear", "private", (), PUBLIC, None),
        ("clear", "public", (), PUBLIC, None),
        ("clear", "local", (), PUBLIC, WithholdReason.SCOPE_LOCAL),
        ("clear", "group", ("team-x",), PUBLIC, WithholdReason.SCOPE_GROUP),
        ("clear", "private", (), PEER_B, None),
        # GREEN: any approved peer and granted consumers, never the public.
        ("green", "private", (), PEER_B, None),
        ("green", "public", (), PUBLIC, WithholdReason.TLP),
        ("green", "private", (), TEAM_Y, None),
        ("green", "private", (), SIEM, None),
        ("green", "local", (), PEER_A, WithholdReason.SCOPE_LOCAL),
        # Scope group: only members of a recipient group.
        ("green", "group", ("team-x",), PEER_A, None),
        ("green", "group", ("team-x",), PEER_B, WithholdReason.SCOPE_GROUP),
        ("green", "group", ("team-x",), TEAM_X, None),
        ("green", "group", ("team-x",), TEAM_Y, WithholdReason.SCOPE_GROUP),
        ("green", "group", ("peer-a",), PEER_A, WithholdReason.SCOPE_GROUP),
        # AMBER and AMBER+STRICT: recipients by id or group.
        ("amber", "private", ("peer-a",), PEER_A, None),
        ("amber", "private", ("team-x",), PEER_A, None),
        ("amber", "private", ("peer-a",), PEER_B, WithholdReason.NOT_RECIPIENT),
        ("amber", "private", (), PEER_A, WithholdReason.NOT_RECIPIENT),
        ("amber+strict", "private", ("team-x",), TEAM_X, None),
        ("amber+strict", "private", ("team-x",), TEAM_Y, WithholdReason.NOT_RECIPIENT),
        ("amber", "private", ("siem",), SIEM, WithholdReason.TLP),
        ("amber", "private", ("team-x",), SIEM_ALL, None),
        ("amber", "public", ("peer-a",), PUBLIC, WithholdReason.TLP),
        # RED: named recipient peers only.
        ("red", "private", ("peer-a",), PEER_A, None),
        ("red", "private", ("team-x",), PEER_A, WithholdReason.NOT_RECIPIENT),
        ("red", "private", ("peer-a",), PEER_B, WithholdReason.NOT_RECIPIENT),
        ("red", "private", ("team-x",), TEAM_X, WithholdReason.TLP),
        ("red", "private", ("siem",), SIEM_ALL, WithholdReason.TLP),
        ("red", "private", ("peer-a",), PUBLIC, WithholdReason.TLP),
        ("red", "group", ("peer-a", "team-x"), PEER_A, None),
        ("red", "group", ("peer-a",), PEER_A, WithholdReason.SCOPE_GROUP),
        ("red", "local", ("peer-a",), PEER_A, WithholdReason.SCOPE_LOCAL),
    ],
)
def test_reach(
    make: MakeIndicator,
    tlp: str,
    scope: str,
    recipients: tuple[str, ...],
    destination: Destination,
    expected: WithholdReason | None,
) -> None:
    verdict = check_reach(make(tlp=tlp, scope=scope, recipients=recipients), destination)
    assert (None if verdict is None else verdict[0]) == expected
    if verdict is not None:
        assert verdict[1]  # a reason a person can read


names = st.sampled_from(["peer-a", "peer-b", "team-x", "team-y", "siem"])
destinations = st.one_of(
    st.builds(Destination.peer, names, st.frozensets(names, max_size=2)),
    st.builds(Destination.group, names),
    st.builds(
        lambda name, tlps, groups: Destination.consumer(name, tlps=tlps, groups=groups),
        names,
        st.frozensets(st.sampled_from(list(Tlp)), min_size=1),
        st.frozensets(names, max_size=2),
    ),
    st.just(PUBLIC),
)
markings = st.tuples(
    st.sampled_from(list(Tlp)), st.sampled_from(list(Scope)), st.frozensets(names, max_size=3)
)


def _marked(base: Indicator, marking: tuple[Tlp, Scope, frozenset[str]]) -> Indicator:
    tlp, scope, recipients = marking
    return replace(base, tlp=tlp, scope=scope, recipients=tuple(sorted(recipients)))


@given(markings, destinations)
def test_marking_invariants(
    marking: tuple[Tlp, Scope, frozenset[str]], destination: Destination
) -> None:
    allowed = check_reach(_marked(indicator(), marking), destination) is None
    tlp, scope, recipients = marking
    if scope is Scope.LOCAL:
        assert not allowed
    if tlp is Tlp.RED and allowed:
        assert destination.kind is DestinationKind.PEER
        assert destination.name in recipients
    if tlp.needs_recipients and allowed:
        assert destination.name in recipients or destination.groups & recipients
    if destination.kind is DestinationKind.PUBLIC and allowed:
        assert tlp is Tlp.CLEAR
        assert scope in (Scope.PRIVATE, Scope.PUBLIC)
    if scope is Scope.GROUP and allowed:
        assert destination.groups & recipients
    if allowed:
        assert tlp in destination.tlps
