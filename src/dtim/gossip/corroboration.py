"""Counting reporters without knowing them, capping what few reporters can claim.

Every origin puts a **blinded reporter token** in its reports:
``HMAC-SHA256(origin secret, "dtim/reporter/v1:" + indicator id)`` cut to 16
bytes. One origin gets the same token every time it reports one indicator,
so repeats and relays count once; tokens of one origin for two indicators
cannot be linked without its secret, so they reveal nothing about who
reports what.

What a malicious *approved* peer can still fake: it can make up any number
of tokens (a Sybil), because nobody can check that two tokens come from two
organisations without learning who they are. The caps below therefore stop
honest mistakes and lone attackers that do not bother, and bound a Sybil by
other means: at most :data:`DEFAULT_NEW_REPORTS_PER_ROUND` new reports from
any one peer per round (:class:`NewReportQuota`), warninglists (refused and
counted against the sender), reputation, the audit log of which peer sent
which report, and manual approval of every organisation in the first place.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from dtim.errors import ValidationError
from dtim.gossip.report import Report
from dtim.model.ids import IndicatorId, PeerId

TOKEN_BYTES = 16
DEFAULT_CAPS = (40, 60, 100)
"""Confidence caps for 1, 2 and 3-or-more distinct reporters."""
DEFAULT_NEW_REPORTS_PER_ROUND = 1000
BLOCK_THRESHOLD = 70
"""Default confidence at which indicators go into exported blocklists."""


def reporter_token(secret: bytes, indicator: IndicatorId) -> str:
    """This origin's blinded token for one indicator (32 hex digits).

    Raises:
        ValidationError: the secret is shorter than 16 bytes.
    """
    if len(secret) < 16:
        raise ValidationError("reporter_secret", "must be at least 16 bytes")
    mac = hmac.new(secret, b"dtim/reporter/v1:" + indicator.encode(), hashlib.sha256)
    return mac.digest()[:TOKEN_BYTES].hex()


@dataclass(frozen=True, slots=True)
class Caps:
    """Confidence caps by number of distinct reporters (the last applies to all above)."""

    limits: tuple[int, ...] = DEFAULT_CAPS

    def __post_init__(self) -> None:
        if not self.limits or any(not 0 <= c <= 100 for c in self.limits):
            raise ValidationError("caps", "need at least one cap, each 0-100")
        if list(self.limits) != sorted(self.limits):
            raise ValidationError("caps", "caps must not decrease with more reporters")

    def cap(self, reporters: int) -> int:
        """Highest confidence that ``reporters`` distinct reporters can support."""
        if reporters <= 0:
            return 0
        return self.limits[min(reporters, len(self.limits)) - 1]

    def combine(self, claims: Iterable[int]) -> int:
        """Confidence supported by the per-reporter claims (one claim per token).

        The k-th highest claim is trusted up to the cap for k reporters, and
        the best k wins: a lone reporter gets at most ``cap(1)`` however
        high it claims, and an extra reporter can lift an indicator only as
        far as the others agree.
        """
        ranked = sorted(claims, reverse=True)
        return max((min(claim, self.cap(k)) for k, claim in enumerate(ranked, 1)), default=0)


class NewReportQuota:
    """At most ``limit`` new reports from each peer per round; the rest wait for the next.

    Refused reports are not lost: reconciliation offers them again later.
    """

    def __init__(self, limit: int = DEFAULT_NEW_REPORTS_PER_ROUND) -> None:
        if limit < 1:
            raise ValidationError("new_reports_per_round", f"must be at least 1, got {limit}")
        self.limit = limit
        self._used: dict[PeerId, int] = {}
        self.refused: dict[PeerId, int] = {}

    def start_round(self) -> None:
        """Forget this round's counts (refusal totals are kept for reputation)."""
        self._used.clear()

    def take(self, peer: PeerId, wanted: int) -> int:
        """Reserve up to ``wanted`` new reports for ``peer``; returns how many it may deliver."""
        used = self._used.get(peer, 0)
        granted = max(0, min(wanted, self.limit - used))
        self._used[peer] = used + granted
        if granted < wanted:
            self.refused[peer] = self.refused.get(peer, 0) + wanted - granted
        return granted

    def remaining(self, peer: PeerId) -> int:
        """How many more new reports ``peer`` may deliver this round."""
        return self.limit - self._used.get(peer, 0)


def admission_order(offered: Sequence[Report], held: Callable[[IndicatorId], int]) -> list[Report]:
    """The order in which to accept new reports when a peer's quota will not take them all.

    Best corroborated first, counting the distinct tokens already held for
    the indicator (``held``) plus those in this offer, then oldest first.
    Under a flood of single-source claims, corroborated reports go ahead
    and the uncorroborated wait for later rounds.
    """
    tokens: dict[IndicatorId, set[str]] = {}
    for report in offered:
        tokens.setdefault(report.indicator, set()).add(report.reporter)
    support = {indicator: held(indicator) + len(found) for indicator, found in tokens.items()}
    return sorted(offered, key=lambda r: (-support[r.indicator], r.bucket))
