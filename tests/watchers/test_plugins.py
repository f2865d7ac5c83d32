"""Hooks: built-ins and third-party watchers register the same way; duplicates are refused."""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from importlib import metadata

import pytest

from dtim.errors import ConfigError
from dtim.watchers.base import InputKind, WatcherSpec
from dtim.watchers.fail2ban import SPEC as FAIL2BAN
from dtim.watchers.hookspecs import hookimpl
from dtim.watchers.plugins import (
    ENTRY_POINT_GROUP,
    make_plugin_manager,
    registered_enrichers,
    registered_watchers,
)

BUILTIN = {
    "ufw",
    "fail2ban",
    "suricata",
    "zeek",
    "clamav",
    "nginx_access",
    "nginx_error",
    "apache_access",
    "apache_error",
}


class Extra:
    @hookimpl
    def dtim_register_watchers(self) -> Sequence[WatcherSpec]:
        return (WatcherSpec("sshd", "third party", InputKind.FILE, (), (), FAIL2BAN.create),)


def test_builtins_register_through_the_hooks() -> None:
    manager = make_plugin_manager(load_entrypoints=False)
    assert set(registered_watchers(manager)) == BUILTIN
    assert registered_enrichers(manager) == ["virustotal"]


def test_entry_point_plugins_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("dtim_test_plugin")
    module.dtim_register_watchers = Extra().dtim_register_watchers  # type: ignore[attr-defined]  # a plugin module
    monkeypatch.setitem(sys.modules, "dtim_test_plugin", module)
    point = metadata.EntryPoint("extra", "dtim_test_plugin", ENTRY_POINT_GROUP)
    dist = types.SimpleNamespace(entry_points=[point], metadata={"name": "dtim-extra"})
    monkeypatch.setattr(metadata, "distributions", lambda: [dist])
    assert "sshd" in registered_watchers(make_plugin_manager())


def test_duplicate_names_are_refused() -> None:
    class Twin:
        @hookimpl
        def dtim_register_watchers(self) -> Sequence[WatcherSpec]:
            return (FAIL2BAN,)

    manager = make_plugin_manager(load_entrypoints=False)
    manager.register(Twin())
    with pytest.raises(ConfigError, match="fail2ban"):
        registered_watchers(manager)
