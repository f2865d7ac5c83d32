"""Exports and imports operators run (``dtim indicators export|import``, the admin API).

An export walks the feed in change order, passes every indicator through the
privacy filter for an ``export`` consumer at the chosen level and TLPs, and
streams what comes out into one of the writers of :mod:`dtim.stix`. An import
reads the whole file once to check it (a malformed file stores nothing),
then again to store it in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from dtim.errors import ValidationError
from dtim.model import Indicator, Tlp
from dtim.stix.bundle import BundleWriter, ImportReport, Skipped, import_indicators, read_objects
from dtim.stix.feeds import FeedWriter
from dtim.stix.feeds.csv import CsvWriter, read_csv
from dtim.stix.feeds.json import JsonWriter
from dtim.stix.feeds.misp import MispFeedWriter, read_misp
from dtim.stix.feeds.txt import TextWriter
from dtim.taxii.accounts import PRIVACY_LEVELS, Account
from dtim.taxii.backend import FeedFilter, IndicatorFeed, Sharer
from dtim.taxii.inbox import localize

EXPORT_FORMATS = ("stix", "csv", "txt", "json", "misp")
IMPORT_FORMATS = ("stix", "misp", "csv")
BATCH = 5000

Acceptor = Callable[[Indicator], str | None]
"""Why a received indicator must not be stored (a warninglist hit ...), or None to keep it."""


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What to export and for whom.

    Attributes:
        format: one of :data:`EXPORT_FORMATS`.
        level: privacy level of the output.
        tlps: markings to include (AMBER needs ``groups`` naming a recipient group).
        groups: recipient groups the export stands for.
        min_confidence: leave out indicators below this confidence.
        types: only these indicator types (``txt --type ipv4`` for a firewall).
    """

    format: str = "stix"
    level: str = "moderate"
    tlps: tuple[Tlp, ...] = (Tlp.CLEAR, Tlp.GREEN)
    groups: tuple[str, ...] = ()
    min_confidence: int | None = None
    types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.format not in EXPORT_FORMATS:
            raise ValidationError(
                "format",
                f"unknown export format {self.format!r} (expected {', '.join(EXPORT_FORMATS)})",
            )
        if self.level not in PRIVACY_LEVELS:
            raise ValidationError(
                "level",
                f"unknown privacy level {self.level!r} (expected {', '.join(PRIVACY_LEVELS)})",
            )
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 100:
            raise ValidationError("min_confidence", "must be between 0 and 100")


def _writer(
    options: ExportOptions, out: BinaryIO | Path, stamp: datetime, stack: ExitStack
) -> FeedWriter:
    if options.format == "misp":
        if not isinstance(out, Path):
            raise ValidationError("out", "a MISP feed is a directory: give --out DIR")
        return MispFeedWriter(out, stamp=stamp)
    stream = stack.enter_context(out.open("wb")) if isinstance(out, Path) else out
    if options.format == "stix":
        return BundleWriter(stream, stamp=stamp)
    if options.format == "csv":
        return CsvWriter(stream)
    if options.format == "txt":
        return TextWriter(stream)
    return JsonWriter(stream)


async def export_indicators(
    feed: IndicatorFeed,
    sharer: Sharer,
    options: ExportOptions,
    out: BinaryIO | Path,
    *,
    now: datetime,
) -> int:
    """Stream an export; returns how many indicators were written.

    Raises:
        ValidationError: bad options (a MISP feed needs a directory).
        StoreError: the feed could not be read.
    """
    consumer = Account(name="export", level=options.level, tlps=options.tlps, groups=options.groups)
    where = FeedFilter(
        tlps=frozenset(options.tlps),
        types=frozenset(options.types) or None,
        min_confidence=options.min_confidence,
    )
    with ExitStack() as stack:
        writer = _writer(options, out, now, stack)
        after = 0
        while True:
            page = await feed.page(after, BATCH, where)
            for record in page.records:
                shared = sharer.share(record.indicator, consumer)
                if shared is not None:
                    writer.write(shared)
            after = page.scanned_to
            if not page.more:
                break
        writer.close()
        return writer.count


def read_indicators(
    path: Path, format: str, report: ImportReport, *, now: datetime, source: str
) -> Iterator[Indicator]:
    """Indicators in an import file, streamed, scoped from their markings.

    Raises:
        ValidationError: unknown format.
        StixError: the file is malformed.
    """
    sources = (source,)
    if format == "misp":
        yield from (localize(i) for i in read_misp(path, report, now=now, sources=sources))
        return
    if format not in IMPORT_FORMATS:
        raise ValidationError(
            "format", f"unknown import format {format!r} (expected {', '.join(IMPORT_FORMATS)})"
        )
    with path.open("rb") as stream:
        if format == "csv":
            yield from (localize(i) for i in read_csv(stream, report, now=now, sources=sources))
        else:
            found = import_indicators(read_objects(stream), report, now=now, sources=sources)
            yield from (localize(i) for i in found)


def guess_format(path: Path) -> str:
    """The import format a file name suggests (a directory is a MISP feed)."""
    if path.is_dir():
        return "misp"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    return "stix"


async def import_file(
    feed: IndicatorFeed,
    path: Path,
    format: str | None,
    *,
    now: datetime,
    source: str = "import",
    accept: Acceptor | None = None,
) -> ImportReport:
    """Check the whole file, then store its indicators in batches.

    Raises:
        StixError: the file is malformed; nothing was stored.
        ValidationError: unknown format.
        StoreError: the store refused a batch.
    """
    kind = format or guess_format(path)
    checked = ImportReport()
    for _ in read_indicators(path, kind, checked, now=now, source=source):
        pass  # first pass: a malformed file raises here, before anything is stored
    report = ImportReport(ignored=checked.ignored)
    batch: list[Indicator] = []
    for indicator in read_indicators(path, kind, report, now=now, source=source):
        reason = accept(indicator) if accept is not None else None
        if reason is not None:
            report.skipped.append(Skipped(f"{indicator.type}:{indicator.value}", reason))
            report.indicators -= 1
            continue
        batch.append(indicator)
        if len(batch) >= BATCH:
            await feed.ingest(batch)
            batch = []
    if batch:
        await feed.ingest(batch)
    return report
