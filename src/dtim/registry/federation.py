"""Federation: registries pull each other's signed entries (anti-entropy) so any lists all.

Each registry periodically reads ``GET /api/v1/entries?since=<cursor>`` from every
registry in ``registry.federate_with`` — entries and withdrawals, each verified
against its node's own signature — and applies them with the same
newest-statement-wins rule as direct registrations. Entries keep the node's
signature across registries, so federation adds no trust: a registry can relay
only what nodes signed. Re-pulling an entry that came from us is a no-op (same
statement), so nothing echoes back and forth. The cursor per remote registry is
kept in our database and reset when the remote database is recreated.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from dtim.errors import DTIMError
from dtim.model.clock import Clock, SystemClock
from dtim.registry.client import DEFAULT_TIMEOUT, MAX_PAGES, RegistryClient
from dtim.registry.records import Outcome, RegistryRecords

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PullReport:
    """What one pull from one registry did."""

    url: str
    outcomes: dict[Outcome, int] = field(default_factory=dict)
    rejected: int = 0
    since: int = 0
    error: str | None = None

    @property
    def stored(self) -> int:
        """Entries or withdrawals that changed our records."""
        return self.outcomes.get(Outcome.STORED, 0)


class Federation:
    """Pulls from the registries in ``peers`` into ``records``.

    Args:
        records: our registry database.
        peers: base URLs of the other registries.
        verify: TLS context for them (see :func:`dtim.registry.client.registry_tls_context`).
        interval_seconds: time between rounds in :meth:`run`.
        page_size: entries per request.
        timeout: seconds for every call.
        clock: time source.
    """

    def __init__(
        self,
        records: RegistryRecords,
        peers: Sequence[str],
        *,
        verify: ssl.SSLContext,
        interval_seconds: float,
        page_size: int = 500,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        self.records = records
        self.peers = tuple(url.rstrip("/") for url in peers)
        self.interval_seconds = interval_seconds
        self.page_size = page_size
        self._verify = verify
        self._timeout = timeout
        self._clock = clock or SystemClock()
        self._clients: dict[str, RegistryClient] = {}
        self._jitter = random.Random()  # noqa: S311  # nosec B311  # spreading rounds in time, not security

    def _client(self, url: str) -> RegistryClient:
        client = self._clients.get(url)
        if client is None:
            client = RegistryClient(
                url, verify=self._verify, timeout=self._timeout, clock=self._clock
            )
            self._clients[url] = client
        return client

    async def close(self) -> None:
        """Close the connections to the other registries."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()

    async def pull(self, url: str) -> PullReport:
        """One anti-entropy pull from ``url``: every entry changed there since our cursor.

        Raises:
            RegistryError: the remote registry is unreachable or refused.
            StoreError: our database failed.
        """
        client = self._client(url)
        remote = await client.describe()
        saved = await self.records.cursor(url)
        since = saved[1] if saved is not None and saved[0] == remote.instance else 0
        outcomes: dict[Outcome, int] = {}
        rejected = 0
        for _ in range(MAX_PAGES):
            page = await client.entries(since=since, limit=self.page_size)
            rejected += len(page.rejected)
            now = int(self._clock.now().timestamp())
            for outcome in await self.records.apply_many(
                page.entries, origin=url, now=now, strict=False
            ):
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            since = page.next_since
            await self.records.save_cursor(url, remote.instance, since, now)
            if not page.more:
                break
        if rejected:
            log.warning(
                "registry %s served %d entries that failed verification; ignored", url, rejected
            )
        return PullReport(url, outcomes, rejected, since)

    async def run_once(self) -> list[PullReport]:
        """Pull from every peer registry; a failing one is reported and does not stop the rest."""
        reports = []
        for url in self.peers:
            try:
                reports.append(await self.pull(url))
            except DTIMError as exc:
                log.warning("federation pull from %s failed: %s", url, exc)
                reports.append(PullReport(url, error=str(exc)))
        return reports

    async def run(self) -> None:
        """Pull forever, every ``interval_seconds`` (jittered by +-10 %)."""
        try:
            while True:
                await self.run_once()
                await asyncio.sleep(self.interval_seconds * self._jitter.uniform(0.9, 1.1))
        finally:
            await self.close()
