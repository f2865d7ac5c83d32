"""What the ``dtim taxii`` and ``dtim indicators export|import`` commands run, with plain arguments.

The CLI may import only ``service``, ``config`` and ``errors``, so it talks to
a :class:`NodeRuntime` through Protocols of plain values; ``service.py``
builds the runtime from the node's store, privacy filter and home.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from dtim.errors import ValidationError
from dtim.model import Clock, Tlp
from dtim.model.indicator import JsonObject
from dtim.stix.bundle import ImportReport
from dtim.taxii.accounts import AccountBook, make_account
from dtim.taxii.backend import IndicatorFeed, Sharer
from dtim.taxii.client import PullProgress, PullState, TaxiiClient
from dtim.taxii.exports import Acceptor, ExportOptions, export_indicators, import_file

PULL_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def report_json(report: ImportReport, *, limit: int = 100) -> JsonObject:
    """An import report as JSON (the first ``limit`` skipped objects listed)."""
    return {
        "indicators": report.indicators,
        "skipped_count": len(report.skipped),
        "skipped": [{"id": s.object_id, "reason": s.reason} for s in report.skipped[:limit]],
        "ignored": dict(report.ignored),
    }


@dataclass
class NodeRuntime:
    """Accounts, exports, imports and pulls of one node.

    Attributes:
        feed: the node's indicators (a ``StoreFeed`` in a node).
        sharer: the privacy filter (a ``PrivacySharer``).
        accounts_path: the TAXII accounts file in the node home.
        state: where pulls remember their position (the store).
        clock: time.
        accept: refusal of received indicators (``privacy_acceptor``).
        verify: TLS verification for pulls (True, or a CA bundle path).
    """

    feed: IndicatorFeed
    sharer: Sharer
    accounts_path: Path
    state: PullState
    clock: Clock
    accept: Acceptor | None = None
    verify: bool | str = True

    def add_user(
        self,
        name: str,
        password: str | None,
        *,
        level: str,
        tlps: list[str],
        groups: list[str],
        can_write: bool,
        cert_fingerprints: list[str],
    ) -> JsonObject:
        """Create a TAXII account and save the accounts file."""
        book = AccountBook(self.accounts_path).load()
        account = make_account(
            name,
            password,
            level=level,
            tlps=tlps or ["clear", "green"],
            groups=groups,
            can_write=can_write,
            cert_fingerprints=cert_fingerprints,
        )
        book.add(account)
        book.save()
        return _user_json(book, name)

    def remove_user(self, name: str) -> None:
        """Delete a TAXII account."""
        book = AccountBook(self.accounts_path).load()
        book.remove(name)
        book.save()

    def list_users(self) -> list[JsonObject]:
        """Every account, without password hashes."""
        book = AccountBook(self.accounts_path).load()
        return [_user_json(book, account.name) for account in book.accounts()]

    async def export(
        self,
        *,
        format: str,
        level: str,
        tlps: list[str],
        groups: list[str],
        min_confidence: int | None,
        types: list[str],
        out: Path | None,
        stream: BinaryIO | None = None,
    ) -> int:
        """Export indicators to ``out`` (or the binary ``stream``, e.g. stdout)."""
        options = ExportOptions(
            format=format,
            level=level,
            tlps=tuple(Tlp.parse(t) for t in tlps) if tlps else (Tlp.CLEAR, Tlp.GREEN),
            groups=tuple(groups),
            min_confidence=min_confidence,
            types=tuple(types),
        )
        target: Path | BinaryIO
        if out is not None:
            target = out
        elif stream is not None:
            target = stream
        else:
            raise ValidationError("out", "give a file (or a stream) to export to")
        return await export_indicators(
            self.feed, self.sharer, options, target, now=self.clock.now()
        )

    async def import_(self, path: Path, format: str | None) -> JsonObject:
        """Import a file; nothing is stored when it is malformed."""
        report = await import_file(
            self.feed,
            path,
            format,
            now=self.clock.now(),
            source=f"import:{path.name}",
            accept=self.accept,
        )
        return report_json(report)

    async def pull(
        self,
        url: str,
        collection: str,
        *,
        user: str | None,
        password: str | None,
        since: str | None,
        on_page: Callable[[int, int, int], None] | None = None,
    ) -> JsonObject:
        """Pull a remote collection; ``on_page(pages, objects, indicators)`` reports progress."""

        def report(progress: PullProgress) -> None:
            if on_page is not None:
                on_page(progress.pages, progress.objects, progress.report.indicators)

        async with httpx.AsyncClient(timeout=PULL_TIMEOUT, verify=self.verify) as http:
            client = TaxiiClient(http, url, user=user, password=password)
            progress = await client.pull(
                collection,
                self.feed,
                self.state,
                now=self.clock.now(),
                since=since,
                accept=self.accept,
                on_page=report,
            )
        return {
            "pages": progress.pages,
            "objects": progress.objects,
            "added_after": progress.added_after,
            **report_json(progress.report),
        }


def _user_json(book: AccountBook, name: str) -> JsonObject:
    account = book.get(name)
    if account is None:
        return {}
    return {
        "name": account.name,
        "level": account.level,
        "tlps": [t.value for t in account.tlps],
        "groups": list(account.groups),
        "can_write": account.can_write,
        "password": bool(account.password_hash),
        "cert_fingerprints": list(account.cert_fingerprints),
    }
