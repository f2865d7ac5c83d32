"""Building the plugin manager and reading the registered watchers from it.

The plugin manager is created by the caller (``service.py``, ``dtim ingest``,
tests), never at import time.
"""

from __future__ import annotations

import importlib
import os

import pluggy

from dtim.errors import ConfigError
from dtim.watchers import hookspecs
from dtim.watchers.base import WatcherSpec

ENTRY_POINT_GROUP = "dtim.watchers"
DEFAULT_PLUGINS = (
    "dtim.watchers.ufw",
    "dtim.watchers.fail2ban",
    "dtim.watchers.suricata",
    "dtim.watchers.zeek",
    "dtim.watchers.clamav",
    "dtim.watchers.nginx",
    "dtim.watchers.apache",
    "dtim.watchers.virustotal",
)
"""Modules of the built-in watchers and enrichers, registered through the same hooks as plugins."""


def make_plugin_manager(
    *, load_entrypoints: bool = True, builtins: tuple[str, ...] = DEFAULT_PLUGINS
) -> pluggy.PluginManager:
    """A plugin manager with DTIM's hookspecs, the built-ins and (optionally) entry-point plugins.

    ``DTIM_TRACE_HOOKS=1`` in the environment traces every hook call to stderr.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in builtins:
        manager.register(importlib.import_module(name), name=name)
    if load_entrypoints:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    if os.environ.get("DTIM_TRACE_HOOKS") == "1":
        manager.trace.root.setwriter(lambda message: os.write(2, message.encode()))
        manager.enable_tracing()
    return manager


def registered_watchers(manager: pluggy.PluginManager) -> dict[str, WatcherSpec]:
    """Every watcher spec registered, by name.

    Raises:
        ConfigError: two plugins register the same watcher name.
    """
    found: dict[str, WatcherSpec] = {}
    for specs in manager.hook.dtim_register_watchers():
        for spec in specs:
            if spec.name in found:
                raise ConfigError(
                    f"two plugins register a watcher named {spec.name!r}", key="watchers"
                )
            found[spec.name] = spec
    return found


def registered_enrichers(manager: pluggy.PluginManager) -> list[str]:
    """Names of every enricher registered."""
    return sorted({name for names in manager.hook.dtim_register_enrichers() for name in names})
