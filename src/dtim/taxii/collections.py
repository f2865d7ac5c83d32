"""The node's TAXII collections and the STIX objects in them, page by page.

``public`` holds TLP:CLEAR; ``tlp-green``, ``tlp-amber`` and
``tlp-amber-strict`` hold one marking each and are listed only to accounts
granted it (TLP:RED never reaches a TAXII consumer); ``inbox`` is writable
only. Each readable collection also holds the definitions its objects refer
to (the TLP marking definitions and DTIM's extension definition), first.

Pages are keyset-based: a cursor is the change number of the last indicator
served plus which of its objects (indicator 0, sighting 1) came last, so a
page costs the same at object 100 and at object 100,000.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dtim.model import Tlp
from dtim.model.clock import iso, parse_time
from dtim.stix.mapping import shared_objects
from dtim.stix.markings import (
    StixObject,
    dtim_extension_definition,
    dtim_identity,
    marking_definitions,
)
from dtim.store import MAX_SEQUENCE
from dtim.taxii.accounts import Account
from dtim.taxii.backend import FeedFilter, IndicatorFeed, Sharer

COLLECTION_NAMESPACE = uuid.UUID("9e2b7c1a-4f3d-5a6b-8c9d-0e1f2a3b4c5d")
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"


@dataclass(frozen=True, slots=True)
class Collection:
    """One TAXII collection (TAXII 2.1 §5.2)."""

    alias: str
    title: str
    description: str
    tlp: Tlp | None
    can_write: bool = False

    @property
    def id(self) -> str:
        """A stable UUID, the same on every node."""
        return str(uuid.uuid5(COLLECTION_NAMESPACE, self.alias))

    def readable_by(self, account: Account) -> bool:
        """True when ``account`` may read this collection."""
        return self.tlp is not None and account.may_read(self.tlp)

    def visible_to(self, account: Account) -> bool:
        """True when the collection is listed for ``account``."""
        return self.readable_by(account) or (self.can_write and account.can_write)

    def resource(self, account: Account) -> StixObject:
        """The collection resource as ``account`` sees it."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "alias": self.alias,
            "can_read": self.readable_by(account),
            "can_write": self.can_write and account.can_write,
            "media_types": [STIX_MEDIA_TYPE],
        }


COLLECTIONS = (
    Collection("public", "Public indicators", "Indicators marked TLP:CLEAR.", Tlp.CLEAR),
    Collection("tlp-green", "TLP:GREEN indicators", "Indicators marked TLP:GREEN.", Tlp.GREEN),
    Collection(
        "tlp-amber",
        "TLP:AMBER indicators",
        "TLP:AMBER indicators listing you as a recipient.",
        Tlp.AMBER,
    ),
    Collection(
        "tlp-amber-strict",
        "TLP:AMBER+STRICT indicators",
        "TLP:AMBER+STRICT indicators listing you as a recipient.",
        Tlp.AMBER_STRICT,
    ),
    Collection(
        "inbox",
        "Inbox",
        "Write-only: objects posted here become this node's indicators.",
        None,
        True,
    ),
)


def find_collection(key: str) -> Collection | None:
    """A collection by id or alias."""
    for collection in COLLECTIONS:
        if key in (collection.id, collection.alias):
            return collection
    return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One STIX object in a collection, with the cursor that points just past it."""

    obj: StixObject
    date_added: str
    cursor: tuple[int, int]

    @property
    def version(self) -> str:
        """The object's version: ``modified``, or ``created`` for objects never modified."""
        return str(self.obj.get("modified") or self.obj["created"])


@dataclass(frozen=True, slots=True)
class ObjectQuery:
    """A parsed objects/manifest request: filters and where to start."""

    limit: int
    after: tuple[int, int] = (-1, -1)
    added_after: datetime | None = None
    ids: frozenset[str] | None = None
    types: frozenset[str] | None = None
    versions: frozenset[str] | None = None
    spec_versions: frozenset[str] | None = None

    def keeps(self, entry: Entry) -> bool:
        """True when ``entry`` passes the match[] filters (added_after is pushed down)."""
        obj = entry.obj
        if self.types is not None and obj["type"] not in self.types:
            return False
        if self.ids is not None and obj["id"] not in self.ids:
            return False
        if self.spec_versions is not None and "2.1" not in self.spec_versions:
            return False
        return self.versions is None or entry.version in self.versions


def static_entries(collection: Collection) -> list[Entry]:
    """The definitions a readable collection holds, at change number 0."""
    assert collection.tlp is not None  # nosec B101  # only readable collections are paged
    objects = [*marking_definitions([collection.tlp]), dtim_identity(), dtim_extension_definition()]
    return [
        Entry(obj, str(obj.get("modified") or obj["created"]), (0, index))
        for index, obj in enumerate(objects)
    ]


@dataclass(frozen=True, slots=True)
class Page:
    """Entries of one page, and whether more follow."""

    entries: list[Entry]
    more: bool


async def collect(
    feed: IndicatorFeed,
    sharer: Sharer,
    collection: Collection,
    account: Account,
    query: ObjectQuery,
    *,
    scan_budget: int = 20,
) -> Page:
    """One page of a collection's objects for ``account``, every indicator passed through privacy.

    ``scan_budget`` bounds how many feed pages one request reads when filters
    drop most records; the page then ends early with ``more`` set, and the
    cursor lets the client go on from there.
    """
    assert collection.tlp is not None  # nosec B101  # callers page readable collections only; narrows the type
    entries: list[Entry] = []
    added_after = iso(query.added_after) if query.added_after is not None else None
    if query.after < (1, 0):
        for entry in static_entries(collection):
            fresh = added_after is None or entry.date_added > added_after
            if entry.cursor > query.after and fresh and query.keeps(entry):
                entries.append(entry)
    if len(entries) > query.limit:
        return Page(entries[: query.limit], True)
    if query.types is not None and query.types.isdisjoint(_FEED_TYPES):
        return Page(entries, False)
    where = FeedFilter(
        tlps=frozenset({collection.tlp}),
        ids=_indicator_ids(query.ids),
        types=None,
        added_after=query.added_after,
    )
    after_seq, after_sub = query.after
    resume_seq = max(after_seq, 0)
    # A page that ended on an indicator (sub 0) may still owe its sighting: re-read that record.
    start = resume_seq if after_sub >= 1 or after_seq <= 0 else resume_seq - 1
    more = True
    stamps: dict[datetime, str] = {}
    for _ in range(scan_budget):
        if len(entries) > query.limit or not more:
            break
        # Two over the gap: one for the record the cursor may repeat, one to see if more follow.
        page = await feed.page(start, query.limit - len(entries) + 2, where)
        more = page.more
        start = page.scanned_to
        for record in page.records:
            shared = sharer.share(record.indicator, account)
            if shared is None:
                continue
            stamp = stamps.get(record.date_added)
            if stamp is None:
                stamp = stamps[record.date_added] = iso(record.date_added)
            for sub, obj in enumerate(shared_objects(shared, stamp=stamp)):
                entry = Entry(obj, stamp, (record.seq, sub))
                if entry.cursor > query.after and query.keeps(entry):
                    entries.append(entry)
    if len(entries) > query.limit:
        return Page(entries[: query.limit], True)
    return Page(entries, more)


_FEED_TYPES = frozenset({"indicator", "sighting"})


def _indicator_ids(ids: frozenset[str] | None) -> frozenset[str] | None:
    # Push an id filter down to the feed only when every id names an indicator;
    # sighting ids cannot be mapped back without a scan.
    if ids is None or not all(i.startswith("indicator--") for i in ids):
        return None
    return frozenset(i.removeprefix("indicator--") for i in ids)


def encode_cursor(cursor: tuple[int, int]) -> str:
    """The opaque ``next`` token for a cursor."""
    return f"{cursor[0]:x}.{cursor[1]:x}"


def decode_cursor(token: str) -> tuple[int, int]:
    """Read a ``next`` token.

    Raises:
        ValueError: the token was not made by :func:`encode_cursor`.
    """
    seq, sep, sub = token.partition(".")
    if not sep or len(token) > 40:
        raise ValueError(token)
    cursor = (int(seq, 16), int(sub, 16))
    if not 0 <= cursor[0] <= MAX_SEQUENCE or cursor[1] < 0:
        raise ValueError(token)
    return cursor


def parse_timestamp(raw: str) -> datetime:
    """A TAXII timestamp query parameter.

    Raises:
        ValidationError: not a timestamp.
    """
    return parse_time(raw, "added_after")


def unique(items: Iterable[str]) -> list[str]:
    """Items in order, without duplicates."""
    return list(dict.fromkeys(items))
