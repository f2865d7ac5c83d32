"""TLP and scope enforcement: may this indicator reach this destination at all?

The rules (DESIGN.md, TLP 2.0):

* scope ``local`` never leaves, whatever the TLP;
* scope ``group`` reaches only members of a group named in ``recipients``;
* CLEAR (TLP 1.0 WHITE) is public: it may go everywhere, including the public
  endpoint, unless its scope is ``local`` or ``group``. A CLEAR indicator with
  the default scope ``private`` *is* served publicly: CLEAR is the author's
  statement that disclosure is unlimited, and scope ``public`` only widens it;
* GREEN reaches any approved peer (and consumers granted GREEN), never the public;
* AMBER and AMBER+STRICT reach only recipients: a peer (or consumer) whose id,
  or one of whose groups, is in ``recipients``; a group destination named there;
* RED reaches only a peer whose id is in ``recipients``; never a group, never a
  consumer, never the public.

The marking that leaves is the indicator's own: the filter never loosens it.
Recipients never leave, so a receiver cannot forward AMBER or RED further (it
has no recipient list to match); see :func:`dtim.privacy.accept_from_peer`.
"""

from __future__ import annotations

from enum import StrEnum

from dtim.model import Indicator, Scope, Tlp
from dtim.privacy.destination import Destination, DestinationKind


class WithholdReason(StrEnum):
    """Why an indicator does not leave for a destination."""

    SCOPE_LOCAL = "scope-local"
    SCOPE_GROUP = "scope-group"
    TLP = "tlp"
    NOT_RECIPIENT = "not-recipient"
    WARNINGLIST = "warninglist"
    INTERNAL_VALUE = "internal-value"


def check_reach(
    indicator: Indicator, destination: Destination
) -> tuple[WithholdReason, str] | None:
    """Decide on marking alone; None means the marking allows it.

    Returns:
        ``(reason, explanation)`` when the indicator must not reach ``destination``.
    """
    scope = indicator.scope
    tlp = indicator.tlp
    kind = destination.kind
    if scope is Scope.LOCAL:
        return WithholdReason.SCOPE_LOCAL, "scope local never leaves the node"
    if tlp not in destination.tlps:
        if kind is DestinationKind.PUBLIC:
            return WithholdReason.TLP, f"TLP:{tlp.value.upper()} is not public (only TLP:CLEAR is)"
        return (
            WithholdReason.TLP,
            f"TLP:{tlp.value.upper()} was not granted to {destination.describe()}",
        )
    if scope is Scope.GROUP:
        if kind is DestinationKind.PUBLIC:
            return WithholdReason.SCOPE_GROUP, "scope group never reaches the public"
        if destination.groups.isdisjoint(indicator.recipients):
            return (
                WithholdReason.SCOPE_GROUP,
                f"scope group: {destination.describe()} is in no recipient group",
            )
    if tlp is Tlp.RED:
        if kind is not DestinationKind.PEER:
            return WithholdReason.TLP, "TLP:RED goes only to named recipient peers"
        if destination.name not in indicator.recipients:
            return (
                WithholdReason.NOT_RECIPIENT,
                f"TLP:RED and {destination.name} is not a named recipient",
            )
    elif (
        tlp.needs_recipients
        and destination.name not in indicator.recipients
        and destination.groups.isdisjoint(indicator.recipients)
    ):
        return (
            WithholdReason.NOT_RECIPIENT,
            f"TLP:{tlp.value.upper()} and {destination.describe()} is not among the recipients",
        )
    return None
