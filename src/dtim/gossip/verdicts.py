"""Analyst verdicts: recorded on the indicator, and sent to the mesh as signed tombstones.

An analyst decides about one indicator (``dtim indicators verdict``, the
admin API, the dashboard):

* ``false_positive`` / ``revoked``: the indicator is marked in the store
  (confidence 0, scope ``local`` so nothing exports or shares it, the verdict
  in :data:`~dtim.model.indicator.VERDICT_FIELD`), and a tombstone signed by
  the node's identity is written to ``gossip_items``. It expires one lifetime
  of the indicator's type after it was issued: by then every report older
  than the verdict is dead on every node, so none can bring the indicator back.
* ``confirmed``: the confidence is pinned locally; nothing is sent.

A running node picks its own tombstones up from the store when it publishes
(:func:`adopt_verdicts`, on the indicator's change number), so a verdict given
by the CLI against the store of a running node spreads without a restart, by
the same reconciliation as reports, to every node of the mesh: a tombstone
carries its issuer's public key, so each node checks it without knowing the
issuer, and relays it. There a new tombstone marks the indicator the same way
(:func:`apply_tombstone`), and no report revives it while the tombstone
stands; from an issuer the node has not approved, at most a daily number per
issuer do (:class:`~dtim.gossip.issuers.IssuerCap`).

Tombstones name the indicator, so only indicators any approved peer may see
(TLP:CLEAR or GREEN, scope ``private`` or ``public``) get one; a verdict on an
AMBER, RED, group or local indicator stays on this node.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import orjson

from dtim.aging import DecayModel, Verdict
from dtim.errors import DTIMError, SignatureError, ValidationError
from dtim.gossip.protocol import decode_item
from dtim.gossip.report import ItemId, Tombstone, encode, item_id
from dtim.gossip.views import ItemIndex
from dtim.model import Indicator, IndicatorId, Scope, Tlp
from dtim.model.clock import iso
from dtim.model.indicator import VERDICT_FIELD, JsonObject, lift_verdict, standing_verdict
from dtim.model.normalize import infer_type, normalize
from dtim.store import IndicatorEvent, Store
from dtim.store.gossip import GossipStore, StoredItem

log = logging.getLogger("dtim.gossip")


class Issuer(Protocol):
    """Who signs tombstones: the node identity (:class:`~dtim.crypto.identity.NodeIdentity`)."""

    @property
    def node_id(self) -> str:
        """Hex SHA-256 of the raw public key."""
        ...

    @property
    def public_key_b64(self) -> str:
        """Standard base64 of the raw Ed25519 public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message``."""
        ...


MAX_REASON_LENGTH = 500
_SHARED_TLPS = frozenset({Tlp.CLEAR, Tlp.GREEN})
_SHARED_SCOPES = frozenset({Scope.PRIVATE, Scope.PUBLIC})


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """What recording a verdict did.

    Attributes:
        indicator: the indicator as stored now.
        verdict: the verdict.
        expires: when it stops applying (None: until another verdict).
        tombstone: the tombstone sent to the mesh, or None.
        withheld: why no tombstone was sent (empty when one was, or for ``confirmed``).
    """

    indicator: Indicator
    verdict: Verdict
    expires: datetime | None
    tombstone: Tombstone | None
    withheld: str = ""

    def audit_fields(self) -> JsonObject:
        """What the audit log records: ids and the verdict, never the value."""
        return {
            "indicator": self.indicator.id,
            "verdict": self.verdict.value,
            "tombstone": None if self.tombstone is None else item_id(self.tombstone).hex(),
        }

    def to_json(self) -> JsonObject:
        """The ``--json`` / admin API form."""
        return {
            "id": self.indicator.id,
            "type": self.indicator.type,
            "value": self.indicator.value,
            "verdict": self.verdict.value,
            "confidence": self.indicator.confidence,
            "expires": None if self.expires is None else iso(self.expires),
            "tombstone": None if self.tombstone is None else item_id(self.tombstone).hex(),
            "shared": self.tombstone is not None,
            "withheld": self.withheld or None,
        }


async def find_indicator(store: Store, ident: str) -> Indicator:
    """A stored indicator by id, or by value (its type inferred).

    Raises:
        ValidationError: nothing stored under that id or value.
    """
    found = await store.get_indicator(ident)
    if found is None:
        try:
            kind = infer_type(ident).value
            found = await store.find_indicator(kind, normalize(kind, ident))
        except ValidationError:
            found = None
    if found is None:
        raise ValidationError("id", f"no indicator with id or value {ident!r}")
    return found


def mark(
    indicator: Indicator,
    verdict: Verdict,
    *,
    issuer: str,
    issued: datetime,
    expires: datetime | None,
    confidence: int = 100,
    reason: str = "",
) -> Indicator:
    """The indicator with the verdict recorded on it (pure).

    Suppressing verdicts set the confidence to 0 and the scope to ``local``;
    ``confirmed`` pins ``confidence``. The scope from before the first verdict
    is kept in the field, so that a lapsed verdict restores it.
    """
    scope = lift_verdict(indicator).scope  # the scope before any earlier verdict
    field: JsonObject = {
        "verdict": verdict.value,
        "confidence": 0 if verdict.suppresses else confidence,
        "scope": scope.value,
        "issued": iso(issued),
        "expires": None if expires is None else iso(expires),
        "issuer": issuer,
    }
    if reason:
        field["reason"] = reason
    return replace(
        indicator,
        confidence=0 if verdict.suppresses else confidence,
        scope=Scope.LOCAL if verdict.suppresses else scope,
        modified=max(indicator.modified, issued),
        custom_fields={**indicator.custom_fields, VERDICT_FIELD: field},
    )


def withheld_reason(indicator: Indicator) -> str:
    """Why a verdict on ``indicator`` may not leave the node, or an empty string."""
    original = lift_verdict(indicator).scope  # the scope before any earlier verdict
    if indicator.tlp not in _SHARED_TLPS:
        return f"TLP:{indicator.tlp.value.upper()} indicators' verdicts stay on this node"
    if original not in _SHARED_SCOPES:
        return f"scope {original.value} indicators' verdicts stay on this node"
    return ""


def sign_tombstone(
    indicator: Indicator,
    verdict: Verdict,
    *,
    issuer: Issuer,
    issued: datetime,
    expires: datetime,
) -> Tombstone:
    """A tombstone for ``indicator`` signed by ``issuer``, its key included (TLP:GREEN).

    Raises:
        ValidationError: ``verdict`` is ``confirmed`` (tombstones only suppress).
    """
    unsigned = Tombstone(
        indicator=indicator.id,
        verdict=verdict,
        tlp=Tlp.GREEN,
        recipients=(),
        issued=int(issued.timestamp()),
        expires=int(expires.timestamp()),
        issuer=issuer.node_id,
        issuer_key=issuer.public_key_b64,
        signature="",
    )
    signature = base64.b64encode(issuer.sign(unsigned.signed_payload())).decode("ascii")
    return replace(unsigned, signature=signature)


def _clean_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if len(text) > MAX_REASON_LENGTH:
        raise ValidationError("reason", f"longer than {MAX_REASON_LENGTH} characters")
    return text


async def record_verdict(
    store: Store,
    indicator_id: str,
    verdict: Verdict,
    *,
    issuer: Issuer,
    model: DecayModel,
    now: datetime,
    reason: str = "",
    confidence: int = 100,
    actor: str = "analyst",
) -> VerdictRecord:
    """Record an analyst's verdict on a stored indicator; suppressing ones issue a tombstone.

    The tombstone is stored first, then the marked indicator (its new change
    number is what makes a running node pick the tombstone up).

    Args:
        indicator_id: the indicator's id.
        issuer: this node's identity (signs the tombstone; its id is the issuer).
        model: the decay model (the tombstone lives one lifetime of the type).
        reason: the analyst's note (kept on this node only).
        confidence: what ``confirmed`` pins (0-100).
        actor: who decided, for the indicator's history.

    Raises:
        ValidationError: unknown indicator, bad confidence or reason.
        StoreError: the store failed.
    """
    if isinstance(confidence, bool) or not 0 <= confidence <= 100:
        raise ValidationError("confidence", f"must be between 0 and 100, got {confidence}")
    note = _clean_reason(reason)
    current = await store.get_indicator(indicator_id)
    if current is None:
        raise ValidationError("id", f"no indicator with id {indicator_id!r}")
    now = now.astimezone(UTC).replace(microsecond=0)
    expires: datetime | None = None
    tombstone: Tombstone | None = None
    withheld = ""
    if verdict.suppresses:
        expires = now + max(model.lifetime(current.type), timedelta(seconds=1))
        withheld = withheld_reason(current)
        if not withheld:
            tombstone = sign_tombstone(current, verdict, issuer=issuer, issued=now, expires=expires)
            key = item_id(tombstone)
            await GossipStore(store).add_items(
                [
                    StoredItem(
                        item_id=key,
                        stamp=tombstone.timestamp,
                        indicator_id=tombstone.indicator,
                        expires=tombstone.expires,
                        relay=True,
                        received_from=None,
                        received_at=now.timestamp(),
                        body=encode(tombstone),
                    )
                ]
            )
    marked = mark(
        current,
        verdict,
        issuer=issuer.node_id,
        issued=now,
        expires=expires,
        confidence=confidence,
        reason=note,
    )
    await store.replace_indicator(marked)
    detail: JsonObject = {
        "verdict": verdict.value,
        "expires": None if expires is None else iso(expires),
        "tombstone": None if tombstone is None else item_id(tombstone).hex(),
    }
    if note:
        detail["reason"] = note
    await store.add_indicator_event(IndicatorEvent(current.id, now, "verdict", actor, detail))
    return VerdictRecord(marked, verdict, expires, tombstone, withheld)


async def apply_tombstone(store: Store, tombstone: Tombstone, now: datetime) -> Indicator | None:
    """Mark the stored indicator a valid tombstone is about; returns it (None: not stored).

    The issuer's id goes into the verdict field, so an operator sees who decided,
    whether or not the issuer is one of this node's approved peers.
    An indicator already marked by a verdict that lasts at least as long is left as it is,
    so the same tombstones give the same row in any order.
    """
    current = await store.get_indicator(tombstone.indicator)
    if current is None or tombstone.expires <= now.timestamp():
        return None
    expires = datetime.fromtimestamp(tombstone.expires, UTC)
    held = standing_verdict(current, now)
    if held is not None and (held.get("expires") is None or str(held["expires"]) >= iso(expires)):
        return current
    marked = mark(
        current,
        tombstone.verdict,
        issuer=tombstone.issuer,
        issued=datetime.fromtimestamp(tombstone.issued, UTC),
        expires=expires,
    )
    await store.replace_indicator(marked)
    await store.add_indicator_event(
        IndicatorEvent(
            current.id,
            now,
            "verdict",
            "peer",
            {
                "verdict": tombstone.verdict.value,
                "issuer": tombstone.issuer,
                "expires": iso(expires),
            },
        )
    )
    return marked


async def adopt_verdicts(
    index: ItemIndex,
    store: Store,
    items: GossipStore,
    changed: Sequence[tuple[int, Indicator]],
    now: datetime,
) -> int:
    """Bring verdicts on changed indicators into gossip; returns how many tombstones were adopted.

    Called with every batch of changed indicators the node publishes:

    * a marked indicator: its tombstones in ``gossip_items`` (issued here by
      the CLI or the admin API, possibly in another process) enter the index
      and so every peer's view;
    * an unmarked indicator with a tombstone standing in the index that
      applies here (a node's own watcher saw it again after the verdict
      arrived): it is marked too.

    Raises:
        StoreError: the store failed.
    """
    marked: list[str] = []
    for _, indicator in changed:
        if VERDICT_FIELD in indicator.custom_fields:
            marked.append(indicator.id)
            continue
        standing = index.standing(IndicatorId(indicator.id), now)
        if standing:
            await apply_tombstone(store, max(standing, key=lambda t: t.expires), now)
    adopted = 0
    for stored in await items.items_for(marked, int(now.timestamp())):
        key = ItemId(stored.item_id)
        if index.known(key):
            continue
        try:
            item = decode_item(orjson.loads(stored.body))
        except (DTIMError, orjson.JSONDecodeError):
            continue  # a damaged row: the reload at start-up reports it
        if not isinstance(item, Tombstone):
            continue
        try:
            adopted += index.add_received(key, item, relay=True, subject=None, at=now.timestamp())
        except SignatureError as exc:  # a row altered in the store
            log.warning("stored tombstone for %s not adopted: %s", item.indicator, exc)
    return adopted
