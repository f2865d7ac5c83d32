"""Integrations in a running node: follow the change feed, hand indicators to webhooks and CEF.

:class:`IntegrationFeed` reads ``Store.changed_since`` from a cursor kept in
the store's state (``integrations.cursor``), so a restart resumes where the
last run stopped: changes handed over before are not handed over again, and
changes made while the node was down are handed over on start. The first
start begins at the current end of the feed (receivers get what changes from
then on; use a TAXII pull or an export for the back catalogue).

Handing over never waits on a receiver: webhooks and TCP syslog have bounded
queues of their own, UDP is fire-and-forget. What a queue still held when the
process died is not sent again (the cursor marks what was handed over).

Each indicator is sent with its current, decayed confidence; expired ones are
skipped, and a destination is not sent the same payload twice in a row for
the same indicator (a busy attacker's every new sighting changes nothing the
receiver sees until the coarsened timestamps or the confidence move).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

import httpx
import orjson

from dtim.aging import DecayModel
from dtim.config.settings import IntegrationsSettings
from dtim.errors import ConfigError, StoreError, ValidationError
from dtim.metrics import METRICS, Metrics
from dtim.model import Clock, Indicator, Tlp
from dtim.privacy import Destination, PrivacyFilter, PrivacyLevel, Shareable
from dtim.store import Store

from .cef import CefSender, CefTcpSender
from .webhooks import WebhookDispatcher, WebhookTarget

CURSOR_KEY = "integrations.cursor"
FED = "dtim_integration_indicators_total"
log = logging.getLogger("dtim.integrations")


class CefSink(Protocol):
    """Anything that takes a shared indicator without waiting (UDP or TCP CEF senders)."""

    def send(self, shared: Shareable) -> None:
        """Send or queue one indicator; never blocks."""


@dataclass(frozen=True)
class CefRoute:
    """Where CEF lines go and which indicators they carry."""

    sink: CefSink
    min_confidence: int = 0
    types: frozenset[str] = frozenset()
    destination: Destination = field(default_factory=lambda: Destination.consumer("syslog"))

    def wants(self, indicator: Indicator) -> bool:
        """Whether the indicator passes the confidence and type filters."""
        return indicator.confidence >= self.min_confidence and (
            not self.types or indicator.type in self.types
        )


class RecentPayloads:
    """The last payload digest sent per (destination, indicator); bounded, oldest forgotten."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._seen: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def fresh(self, destination: str, indicator_id: str, payload: bytes) -> bool:
        """True (and remembered) unless this exact payload was the last one sent there for it."""
        key = (destination, indicator_id)
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        if self._seen.get(key) == digest:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = digest
        self._seen.move_to_end(key)
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


class IntegrationFeed:
    """Follows the change feed and hands what changed to the webhook dispatcher and a CEF sink.

    Args:
        store: the node store (connected).
        privacy: the node's privacy filter (CEF payloads; the dispatcher filters webhooks itself).
        model: aging, for the current confidence.
        clock: time.
        webhooks: the dispatcher, or None.
        cef: the CEF route, or None.
        batch: changes read per query.
        poll_seconds: pause when the feed is drained.
    """

    def __init__(
        self,
        store: Store,
        privacy: PrivacyFilter,
        model: DecayModel,
        clock: Clock,
        *,
        webhooks: WebhookDispatcher | None = None,
        cef: CefRoute | None = None,
        batch: int = 500,
        poll_seconds: float = 1.0,
        metrics: Metrics = METRICS,
    ) -> None:
        self._store = store
        self._privacy = privacy
        self._model = model
        self._clock = clock
        self._webhooks = webhooks
        self._cef = cef
        self._batch = batch
        self._poll = poll_seconds
        self._metrics = metrics
        self._recent = RecentPayloads()
        self.cursor: int | None = None
        metrics.declare(FED, "counter", "Indicators handed to integrations, by destination.")

    async def load_cursor(self) -> int:
        """The stored cursor; on the very first start, the current end of the feed (stored)."""
        stored = await self._store.get_state(CURSOR_KEY)
        if isinstance(stored, int) and stored >= 0:
            self.cursor = stored
        else:
            self.cursor = await self._store.last_seq()
            await self._store.set_state(CURSOR_KEY, self.cursor)
        return self.cursor

    async def pump(self) -> int:
        """Hand over everything changed since the cursor; returns how many changes were read."""
        cursor = await self.load_cursor() if self.cursor is None else self.cursor
        read = 0
        while True:
            rows = await self._store.changed_since(cursor, limit=self._batch)
            if not rows:
                return read
            now = self._clock.now()
            for seq, indicator in rows:
                cursor = seq
                current = self._model.confidence(
                    indicator.confidence, indicator.type, indicator.last_seen, now
                )
                if current > 0:
                    self._hand_over(replace(indicator, confidence=current))
            read += len(rows)
            await self._store.set_state(CURSOR_KEY, cursor)
            self.cursor = cursor

    def _hand_over(self, indicator: Indicator) -> None:
        if self._webhooks is not None:
            queued = self._webhooks.offer(indicator, fresh=self._recent.fresh)
            if queued:
                self._metrics.inc(FED, queued, destination="webhook")
        route = self._cef
        if route is not None and route.wants(indicator):
            shared = self._privacy.share(indicator, route.destination)
            if shared is not None and self._recent.fresh(
                "syslog", indicator.id, format_key(shared)
            ):
                route.sink.send(shared)
                self._metrics.inc(FED, destination="syslog")

    async def run(self) -> None:
        """Pump, then wait ``poll_seconds``, until cancelled; store errors are logged, retried."""
        while True:
            try:
                await self.pump()
            except StoreError as exc:
                log.warning("integrations: cannot read the change feed, retrying: %s", exc)
            await asyncio.sleep(self._poll)


def format_key(shared: Shareable) -> bytes:
    """The bytes a destination would see of ``shared`` (for repeat detection)."""
    return orjson.dumps(shared.to_json(), option=orjson.OPT_SORT_KEYS)


# -- building from [integrations] ------------------------------------------------------------


def parse_address(raw: str, *, key: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` as a pair.

    Raises:
        ConfigError: not of that form.
    """
    host, sep, port = raw.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"expected host:port, got {raw!r}", key=key)
    return host, int(port)


def webhook_targets(
    entries: Iterable[object], environ: Callable[[str], str | None]
) -> list[WebhookTarget]:
    """``integrations.webhooks`` tables as targets; each secret from its environment variable.

    Raises:
        ConfigError: a missing secret, a bad level, TLP or number (named by entry).
    """
    targets = []
    for number, entry in enumerate(entries, start=1):
        key = f"integrations.webhooks[{number}]"
        if not isinstance(entry, dict):
            raise ConfigError("expected a table", key=key)
        url = str(entry.get("url", ""))
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"url must be http(s), got {url!r}", key=f"{key}.url")
        secret_env = str(entry.get("secret_env", ""))
        secret = environ(secret_env) if secret_env else None
        if not secret:
            raise ConfigError(
                f"the HMAC secret comes from ${secret_env or '<secret_env>'}, which is empty/unset",
                key=f"{key}.secret_env",
            )
        level = PrivacyLevel.parse(str(entry.get("level", "moderate")), key=f"{key}.level")
        try:
            tlps = frozenset(Tlp.parse(str(t)) for t in entry.get("tlp", ["clear", "green"]))
            min_confidence = int(entry.get("min_confidence", 0))
        except ValidationError as exc:
            raise ConfigError(exc.reason, key=f"{key}.tlp") from None
        except (ValueError, TypeError):
            raise ConfigError(
                f"expected a whole number, got {entry.get('min_confidence')!r}",
                key=f"{key}.min_confidence",
            ) from None
        targets.append(
            WebhookTarget(
                name=str(entry.get("name") or f"webhook{number}"),
                url=url,
                secret=secret.encode(),
                min_confidence=min_confidence,
                types=frozenset(str(t) for t in entry.get("types", [])),
                tlps=tlps,
                level=level,
            )
        )
    return targets


@dataclass
class Integrations:
    """What :func:`build_integrations` wired: the tasks to run and what to close afterwards."""

    feed: IntegrationFeed
    client: httpx.AsyncClient | None
    dispatcher: WebhookDispatcher | None
    udp: CefSender | None
    tcp: CefTcpSender | None

    async def run(self) -> None:
        """Run the feed and the senders until cancelled; release sockets on the way out."""
        try:
            async with asyncio.TaskGroup() as group:
                if self.dispatcher is not None:
                    group.create_task(self.dispatcher.run(), name="webhooks")
                if self.tcp is not None:
                    group.create_task(self.tcp.run(), name="cef-tcp")
                if self.udp is not None:
                    await self.udp.__aenter__()
                group.create_task(self.feed.run(), name="integration-feed")
        finally:
            if self.udp is not None:
                await self.udp.__aexit__(None, None, None)
            if self.client is not None:
                await self.client.aclose()


def build_integrations(
    settings: IntegrationsSettings,
    store: Store,
    privacy: PrivacyFilter,
    model: DecayModel,
    clock: Clock,
    *,
    environ: Callable[[str], str | None],
    poll_seconds: float = 1.0,
) -> Integrations | None:
    """Wire ``[integrations]`` (nothing connects yet); None when no integration is configured.

    Raises:
        ConfigError: a bad webhook entry, a missing secret or a bad syslog address.
    """
    targets = webhook_targets(settings.webhooks, environ)
    client = httpx.AsyncClient(follow_redirects=False) if targets else None
    dispatcher = WebhookDispatcher(targets, privacy, client) if client is not None else None
    udp: CefSender | None = None
    tcp: CefTcpSender | None = None
    route: CefRoute | None = None
    if settings.syslog_cef_address:
        host, port = parse_address(
            settings.syslog_cef_address, key="integrations.syslog_cef_address"
        )
        sink: CefSink
        if settings.syslog_cef_transport == "tcp":
            sink = tcp = CefTcpSender(host, port)
        else:
            sink = udp = CefSender(host, port)
        route = CefRoute(sink, settings.syslog_min_confidence, frozenset(settings.syslog_types))
    if dispatcher is None and route is None:
        return None
    feed = IntegrationFeed(
        store, privacy, model, clock, webhooks=dispatcher, cef=route, poll_seconds=poll_seconds
    )
    return Integrations(feed, client, dispatcher, udp, tcp)
