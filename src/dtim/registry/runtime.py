"""A registry process's parts: its database, its application and its background loops.

``service.run_registry`` builds one, serves :attr:`RegistryRuntime.app` with uvicorn
over TLS, and spawns :meth:`RegistryRuntime.maintain` and (when
``federate_with`` is set) :meth:`RegistryRuntime.federate`. Several replicas may
run on one PostgreSQL database: every piece of shared state is in it, except the
rate-limit buckets and the replay cache, which are per replica (see
docs/registry.md).
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from starlette.types import ASGIApp

from dtim.crypto.identity import NodeIdentity
from dtim.errors import DTIMError, StoreError
from dtim.model.clock import Clock, SystemClock
from dtim.registry.client import registry_tls_context
from dtim.registry.federation import Federation
from dtim.registry.records import RegistryRecords
from dtim.registry.routes import RegistryOptions, create_registry_app

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "data/registry.db"
"""The registry's SQLite file, relative to its home."""


class RegistryRuntime:
    """Database, app, federation and maintenance of one registry process.

    Args:
        database_url: ``sqlite:///...`` or ``postgresql://...``.
        identity: the registry's own key.
        options: behaviour.
        federation_tls: TLS context for the other registries (default: system store).
        clock: time source.
    """

    def __init__(
        self,
        database_url: str,
        identity: NodeIdentity,
        options: RegistryOptions,
        *,
        federation_tls: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.records = RegistryRecords(database_url)
        self.identity = identity
        self.options = options
        self._clock = clock or SystemClock()
        self._federation_tls = federation_tls
        self._app: ASGIApp | None = None
        self.federation: Federation | None = None

    async def start(self) -> None:
        """Open and migrate the database; build the app and the federation puller.

        Raises:
            StoreError: the database cannot be opened or migrated.
        """
        await self.records.connect()
        self._app = create_registry_app(
            self.records, self.identity, self.options, clock=self._clock
        )
        if self.options.federate_with:
            self.federation = Federation(
                self.records,
                self.options.federate_with,
                verify=self._federation_tls or registry_tls_context(),
                interval_seconds=self.options.federation_interval,
                page_size=self.options.page_size,
                clock=self._clock,
            )

    @property
    def app(self) -> ASGIApp:
        """The ASGI application (after :meth:`start`)."""
        if self._app is None:
            raise StoreError("registry runtime is not started (call await runtime.start())")
        return self._app

    async def maintain(self) -> None:
        """Forever: delete expired entries and tombstones once per heartbeat."""
        while True:
            try:
                removed = await self.records.prune(int(self._clock.now().timestamp()))
            except DTIMError as exc:
                log.warning("registry maintenance failed: %s", exc)
            else:
                if removed:
                    log.info("registry: removed %d expired entries", removed)
            await asyncio.sleep(self.options.heartbeat_seconds)

    async def federate(self) -> None:
        """Forever: pull from the federated registries (returns at once without any)."""
        if self.federation is not None:
            await self.federation.run()

    async def close(self) -> None:
        """Close federation connections and the database."""
        if self.federation is not None:
            await self.federation.close()
        await self.records.close()
