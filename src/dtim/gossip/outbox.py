"""The node's own reports: built from its indicators, through the privacy filter, never stored.

A report is a pure function of (the local indicator, the privacy level of the
destination, the node's reporter secret), so the node does not store its own
reports: it derives them when it builds a peer's view, and the same
indicator state always gives the same report, hence the same item id, on
every call and after every restart.

What goes into a report comes from the :class:`~dtim.privacy.Shareable` the
privacy filter built for the destination: the coarsened ``last_seen`` (the
time bucket), the confidence (50 at the ``strict`` level, which shares no
confidence), the tags (``open`` only), and an expiry of bucket + the type's
lifetime. At ``strict`` no timestamp leaves either, so the bucket is the
start of the current UTC day, which tells a receiver nothing it does not
already know from when it received the report.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from dtim.aging import DecayModel
from dtim.gossip.corroboration import reporter_token
from dtim.gossip.report import ItemId, Report, item_id
from dtim.model import Indicator, Tlp
from dtim.model.clock import utc
from dtim.privacy import Destination, PrivacyFilter, PrivacyLevel, Shareable

GOSSIP_SOURCE = "gossip"
"""``Indicator.sources`` entry of everything learned from peers."""
STRICT_CONFIDENCE = 50
"""Confidence claimed at the ``strict`` level, which shares none."""
_DAY = 86400
REPORTER_SECRET_LABEL = b"dtim/reporter-secret/v1"
"""What the node signs to derive its reporter secret (:func:`reporter_secret`)."""


def reporter_secret(sign: bytes) -> bytes:
    """The node's reporter secret from its identity's signature of a fixed label.

    Ed25519 signatures are deterministic, so ``identity.sign(REPORTER_SECRET_LABEL)``
    gives the same secret on every start without storing one; only the holder
    of the private key can compute it.
    """
    return hashlib.sha256(REPORTER_SECRET_LABEL + sign).digest()


def is_local(indicator: Indicator) -> bool:
    """True when the node knows the indicator itself (not only from peers).

    Indicators learned from peers carry only the ``gossip`` source; anything
    else (watchers, an analyst, an import) is the node's own knowledge, which
    it reports under its own reporter token.
    """
    return set(indicator.sources) != {GOSSIP_SOURCE}


def build_report(
    indicator: Indicator,
    shareable: Shareable,
    *,
    secret: bytes,
    model: DecayModel,
    now: datetime,
) -> Report:
    """The report for a shareable copy of a local indicator.

    Args:
        indicator: the local indicator (only its recipients are read, for AMBER/RED).
        shareable: what the privacy filter let leave for the destination.
        secret: this node's reporter secret.
        model: the decay model (the expiry is bucket + the type's lifetime).
        now: the current time (the bucket at ``strict``).

    Raises:
        ValidationError: the shareable copy cannot make a valid report.
    """
    moment = shareable.last_seen
    if moment is None:
        bucket = int(utc(now).timestamp()) // _DAY * _DAY
    else:
        bucket = int(utc(moment).timestamp())
    confidence = STRICT_CONFIDENCE if shareable.confidence is None else shareable.confidence
    recipients: tuple[str, ...] = ()
    if shareable.tlp.needs_recipients:
        recipients = tuple(sorted(set(indicator.recipients)))
    lifetime = int(model.lifetime(shareable.type).total_seconds())
    return Report(
        indicator=indicator.id,
        type=shareable.type,
        value=shareable.value,
        tlp=shareable.tlp,
        recipients=recipients,
        bucket=bucket,
        confidence=confidence,
        tags=tuple(sorted(set(shareable.tags or ()))),
        reporter=reporter_token(secret, indicator.id),
        expires=bucket + max(lifetime, 1),
    )


@dataclass(slots=True)
class LocalEntry:
    """One local indicator and the reports made of it so far, one per privacy level."""

    indicator: Indicator
    reports: dict[PrivacyLevel, tuple[ItemId, Report] | None] = field(default_factory=dict)

    @property
    def stemmable(self) -> bool:
        """CLEAR and GREEN may travel the Dandelion stem; AMBER and RED go to recipients only."""
        return self.indicator.tlp in (Tlp.CLEAR, Tlp.GREEN)

    def report_for(
        self,
        destination: Destination,
        privacy: PrivacyFilter,
        *,
        secret: bytes,
        model: DecayModel,
        now: datetime,
    ) -> tuple[ItemId, Report] | None:
        """The report this destination may receive, or None when the filter withholds it.

        The marking check runs for every destination; the report itself is
        built once per level and reused.
        """
        if privacy.refusal(self.indicator, destination) is not None:
            return None
        level = privacy.level_for(destination)
        if level in self.reports:
            return self.reports[level]
        until = model.valid_until(self.indicator.type, self.indicator.last_seen)
        shareable = privacy.share(self.indicator, destination, valid_until=until)
        made: tuple[ItemId, Report] | None = None
        if shareable is not None:
            report = build_report(self.indicator, shareable, secret=secret, model=model, now=now)
            made = (item_id(report), report)
        self.reports[level] = made
        return made
