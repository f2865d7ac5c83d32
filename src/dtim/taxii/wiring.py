"""The real implementations behind the TAXII Protocols: ``dtim.privacy`` and ``dtim.store``.

``service.py`` builds these and hands them to :class:`dtim.taxii.server.TaxiiServer`
and to the export/import runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from dtim.model import Clock, Indicator
from dtim.privacy import Destination, PrivacyFilter, PrivacyLevel
from dtim.store import Store
from dtim.taxii.accounts import Account, AccountBook
from dtim.taxii.backend import FeedFilter, FeedPage, FeedRecord
from dtim.taxii.runtime import NodeRuntime
from dtim.taxii.server import TaxiiServer, TaxiiSettings

ValidUntil = Callable[[Indicator], datetime | None]
"""Aging's expiry for an indicator (None when unknown)."""


class PrivacySharer:
    """The :class:`~dtim.taxii.backend.Sharer` backed by the node's privacy filter.

    Each account is a ``consumer`` destination: its privacy level, the TLPs it
    was granted and the groups it belongs to.
    """

    def __init__(self, privacy: PrivacyFilter, valid_until: ValidUntil | None = None) -> None:
        self._filter = privacy
        self._valid_until = valid_until
        self._destinations: dict[Account, Destination] = {}

    def destination(self, account: Account) -> Destination:
        """The privacy destination an account stands for."""
        found = self._destinations.get(account)
        if found is None:
            found = Destination.consumer(
                account.name,
                tlps=account.tlps,
                groups=account.groups,
                level=PrivacyLevel(account.level),
            )
            if len(self._destinations) > 1024:
                self._destinations.clear()
            self._destinations[account] = found
        return found

    def share(self, indicator: Indicator, account: Account) -> Mapping[str, object] | None:
        """The privacy filter's JSON form for ``account``, or None."""
        until = self._valid_until(indicator) if self._valid_until is not None else None
        shareable = self._filter.share(indicator, self.destination(account), valid_until=until)
        return None if shareable is None else shareable.to_json()


class StoreFeed:
    """The :class:`~dtim.taxii.backend.IndicatorFeed` over the node's store.

    Pages follow the store's change numbers (``changed_since``), so paging is
    keyset-based. ``date_added`` is the indicator's ``modified`` time until
    the store records when each change was made.
    """

    def __init__(self, store: Store, *, batch: int = 2000) -> None:
        self._store = store
        self._batch = batch

    async def page(self, after_seq: int, limit: int, where: FeedFilter) -> FeedPage:
        """Scan forward from ``after_seq`` until ``limit`` records pass ``where``."""
        if where.ids is not None:
            return await self._by_ids(after_seq, limit, where)
        out: list[FeedRecord] = []
        scanned = after_seq
        more = True
        # Bounded: a filter that matches little returns a short page with `more` set.
        for _ in range(8):
            rows = await self._store.changed_since(scanned, limit=max(self._batch, limit))
            if not rows:
                more = False
                break
            for seq, indicator in rows:
                scanned = seq
                record = FeedRecord(seq, indicator.modified, indicator)
                if where.accepts(record):
                    out.append(record)
                    if len(out) >= limit:
                        return FeedPage(out, scanned, True)
            if len(rows) < max(self._batch, limit):
                more = False
                break
        return FeedPage(out, scanned, more)

    async def _by_ids(self, after_seq: int, limit: int, where: FeedFilter) -> FeedPage:
        found: list[FeedRecord] = []
        for ident in sorted(where.ids or ()):
            record = await self.get(ident)
            if record is not None and record.seq > after_seq and where.accepts(record):
                found.append(record)
        found.sort(key=lambda r: r.seq)
        page = found[:limit]
        return FeedPage(page, page[-1].seq if page else after_seq, len(found) > limit)

    async def get(self, indicator_id: str) -> FeedRecord | None:
        """The current record of one indicator (its change number read with it)."""
        indicator = await self._store.get_indicator(indicator_id)
        if indicator is None:
            return None
        return FeedRecord(await self._seq_of(indicator_id), indicator.modified, indicator)

    async def _seq_of(self, indicator_id: str) -> int:
        # The store does not return the change number with get_indicator; a
        # record found by id is placed at the newest change so cursors stay valid.
        return await self._store.last_seq()

    async def ingest(self, indicators: Sequence[Indicator]) -> int:
        """Merge in one transaction (the store's ``upsert_indicators``)."""
        return await self._store.upsert_indicators(list(indicators))


def privacy_acceptor(privacy: PrivacyFilter) -> Callable[[Indicator], str | None]:
    """Refuse received indicators the privacy filter would not accept from a peer (warninglists)."""

    def accept(indicator: Indicator) -> str | None:
        verdict = privacy.accept_from_peer(indicator)
        return None if verdict.accepted else verdict.detail or "refused by the privacy filter"

    return accept


def node_runtime(
    store: Store,
    privacy: PrivacyFilter,
    accounts_path: Path,
    clock: Clock,
    *,
    valid_until: ValidUntil | None = None,
    verify: bool | str = True,
) -> NodeRuntime:
    """The runtime behind ``dtim taxii`` and ``dtim indicators export|import`` (store connected)."""
    return NodeRuntime(
        feed=StoreFeed(store),
        sharer=PrivacySharer(privacy, valid_until),
        accounts_path=accounts_path,
        state=store,
        clock=clock,
        accept=privacy_acceptor(privacy),
        verify=verify,
    )


def node_taxii_server(
    store: Store,
    privacy: PrivacyFilter,
    accounts_path: Path,
    clock: Clock,
    *,
    settings: TaxiiSettings | None = None,
    valid_until: ValidUntil | None = None,
) -> TaxiiServer:
    """The TAXII server of a node; mount ``.app()`` at ``/taxii2``."""
    return TaxiiServer(
        feed=StoreFeed(store),
        sharer=PrivacySharer(privacy, valid_until),
        accounts=AccountBook(accounts_path).load(),
        settings=settings or TaxiiSettings(),
        clock=clock,
        accept=privacy_acceptor(privacy),
    )
