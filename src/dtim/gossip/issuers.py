"""Issuers of verdicts: the daily cap on tombstones from issuers this node has not approved.

Every tombstone that verifies is held and relayed, whoever issued it, so the
set of items converges on every node (the merge stays a CRDT). Whether a held
tombstone also marks this node's indicator is decided here, once, when it
arrives: always for this node's own and for its approved peers' tombstones;
for any other issuer only the first ``per_day`` of that issuer per UTC day
(by arrival here). The others stay held and relayed but change nothing on
this node.

The decision depends on arrival order, on purpose: counting by the
tombstone's own ``issued`` time would make it order-independent, but an
issuer can backdate ``issued`` to spread a burst over many past days.
"""

from __future__ import annotations

from collections.abc import Callable

DAY_SECONDS = 86400
DEFAULT_PER_DAY = 100


def _nobody(_issuer: str) -> bool:
    return False


class IssuerCap:
    """Counts tombstones applied per unapproved issuer and UTC day.

    Args:
        per_day: tombstones of one unapproved issuer applied per day (0: none).
        approved: True for an issuer this node follows without a cap (itself,
            its approved peers); evaluated when a tombstone arrives.
    """

    def __init__(
        self, per_day: int = DEFAULT_PER_DAY, approved: Callable[[str], bool] = _nobody
    ) -> None:
        self.per_day = per_day
        self.approved = approved
        self._counts: dict[tuple[str, int], int] = {}
        self._newest = 0

    def admit(self, issuer: str, at: float) -> bool:
        """Whether a tombstone of ``issuer`` arriving at ``at`` (Unix seconds) applies here.

        An applied tombstone of an unapproved issuer counts against that issuer's day.
        """
        if self.approved(issuer):
            return True
        day = int(at // DAY_SECONDS)
        if day > self._newest:
            self._newest = day
            # Only today's counts (and yesterday's, for a clock that steps back) matter.
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= day - 1}
        used = self._counts.get((issuer, day), 0)
        if used >= self.per_day:
            return False
        self._counts[(issuer, day)] = used + 1
        return True
