"""A TAXII 2.1 client that pulls a collection into the node (``dtim taxii pull``).

It follows ``next`` within a run and remembers ``X-TAXII-Date-Added-Last``
after every stored page, so an interrupted pull resumes with
``added_after`` where it stopped. The HTTP client is injected (an
``httpx.AsyncClient`` with its timeouts and TLS settings); HTTP failures
become :class:`~dtim.errors.TaxiiError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from dtim.errors import StixError, TaxiiError
from dtim.model import JsonValue, Tlp
from dtim.stix.bundle import ImportReport, Skipped, bundle_objects, import_indicators
from dtim.taxii.backend import IndicatorFeed
from dtim.taxii.exports import Acceptor
from dtim.taxii.inbox import localize

ACCEPT = "application/taxii+json;version=2.1"
PAGE_SIZE = 1000


class PullState(Protocol):
    """Where each pulled collection's last ``added_after`` is kept (the store's state table)."""

    async def get_state(self, key: str) -> JsonValue:
        """The stored value, or None."""
        ...

    async def set_state(self, key: str, value: JsonValue) -> None:
        """Store a value."""
        ...


@dataclass(slots=True)
class PullProgress:
    """Counters of a pull, updated after every page."""

    pages: int = 0
    objects: int = 0
    report: ImportReport = field(default_factory=ImportReport)
    added_after: str | None = None


class TaxiiClient:
    """Reads a remote TAXII 2.1 server through an injected ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self._http = http
        self._url = url if url.endswith("/") else url + "/"
        self._auth = httpx.BasicAuth(user, password or "") if user else None

    async def _get(self, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self._http.get(
                url,
                params=params,
                headers={"Accept": ACCEPT},
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise TaxiiError(f"{url}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code != 200:
            raise TaxiiError(f"{url}: HTTP {response.status_code}: {_problem(response)}")
        return response

    async def _json(
        self, url: str, params: dict[str, str] | None = None
    ) -> tuple[dict[str, object], httpx.Response]:
        response = await self._get(url, params)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise TaxiiError(f"{url}: the server did not answer with JSON") from None
        if not isinstance(data, dict):
            raise TaxiiError(f"{url}: expected a JSON object")
        return data, response

    async def api_root(self) -> str:
        """The API root URL: the given URL when it is one, else the discovery's default."""
        data, _ = await self._json(self._url)
        if "api_roots" in data or "default" in data:
            roots = data.get("api_roots") or []
            root = data.get("default") or (roots[0] if isinstance(roots, list) and roots else None)
            if not isinstance(root, str):
                raise TaxiiError(f"{self._url}: discovery lists no API root")
            root = urljoin(self._url, root)
            return root if root.endswith("/") else root + "/"
        return self._url

    async def objects_url(self, collection: str) -> str:
        """The objects endpoint of a collection named by id, alias or title.

        Raises:
            TaxiiError: no such collection, or it is not readable.
        """
        root = await self.api_root()
        data, _ = await self._json(urljoin(root, "collections/"))
        listed = data.get("collections") or []
        for item in listed if isinstance(listed, list) else []:
            if isinstance(item, dict) and collection in (
                item.get("id"),
                item.get("alias"),
                item.get("title"),
            ):
                if item.get("can_read") is False:
                    raise TaxiiError(
                        f"collection {collection!r} is not readable with these credentials"
                    )
                return urljoin(root, f"collections/{item['id']}/objects/")
        raise TaxiiError(f"{root}: no collection {collection!r}")

    async def pull(
        self,
        collection: str,
        feed: IndicatorFeed,
        state: PullState,
        *,
        now: datetime,
        since: str | None = None,
        accept: Acceptor | None = None,
        on_page: Callable[[PullProgress], None] | None = None,
    ) -> PullProgress:
        """Pull every object added after ``since`` (or after the remembered point) into ``feed``.

        Raises:
            TaxiiError: the server failed or answered nonsense; pages already stored stay.
        """
        url = await self.objects_url(collection)
        key = f"taxii.pull:{url}"
        remembered = await state.get_state(key)
        added_after = since or (remembered if isinstance(remembered, str) else None)
        host = urlsplit(url).hostname or "taxii"
        source = f"taxii:{host}"
        progress = PullProgress(added_after=added_after)
        cursor: str | None = None
        while True:
            params = {"limit": str(PAGE_SIZE)}
            if added_after:
                params["added_after"] = added_after
            if cursor:
                params["next"] = cursor
            data, response = await self._json(url, params)
            try:
                objects = bundle_objects({"objects": data.get("objects", [])})
            except StixError as exc:
                raise TaxiiError(f"{url}: {exc}") from exc
            made = [
                localize(i)
                for i in import_indicators(
                    objects, progress.report, now=now, sources=(source,), default_tlp=Tlp.AMBER
                )
            ]
            if accept is not None:
                kept = []
                for indicator in made:
                    reason = accept(indicator)
                    if reason is None:
                        kept.append(indicator)
                    else:
                        progress.report.indicators -= 1
                        progress.report.skipped.append(
                            Skipped(f"{indicator.type}:{indicator.value}", reason)
                        )
                made = kept
            if made:
                await feed.ingest(made)
            progress.pages += 1
            progress.objects += len(objects)
            last = response.headers.get("X-TAXII-Date-Added-Last")
            if last:
                progress.added_after = last
                await state.set_state(key, last)
            if on_page is not None:
                on_page(progress)
            next_cursor = data.get("next")
            if data.get("more") is not True or not isinstance(next_cursor, str) or not objects:
                return progress
            cursor = next_cursor


def _problem(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("description") or body.get("title") or response.reason_phrase)
    return response.reason_phrase
