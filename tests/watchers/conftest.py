"""Fixtures of the watcher tests: the registered specs and a context factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from dtim.model import FakeClock
from dtim.watchers.base import WatcherContext, WatcherSpec, parse_networks
from dtim.watchers.plugins import make_plugin_manager, registered_watchers

NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture(scope="session")
def specs() -> dict[str, WatcherSpec]:
    """Every built-in watcher spec, registered through the hooks (no entry points)."""
    return registered_watchers(make_plugin_manager(load_entrypoints=False))


@pytest.fixture
def make_context() -> Callable[..., WatcherContext]:
    """Build a context: UTC, a fake clock, optional settings and own networks."""

    def build(
        settings: dict[str, Any] | None = None, own: list[str] | None = None, now: datetime = NOW
    ) -> WatcherContext:
        return WatcherContext(
            settings=settings or {},
            own_networks=parse_networks(own or []),
            clock=FakeClock(now),
            timezone=UTC,
        )

    return build
