"""The pluggy hooks through which watchers and enrichers are registered.

Built-in watchers are registered through these same hooks (see
:data:`dtim.watchers.plugins.DEFAULT_PLUGINS`); a third-party package adds
one by exposing a module with ``@hookimpl`` functions under the entry-point
group ``dtim.watchers``::

    [project.entry-points."dtim.watchers"]
    mywatcher = "mypackage.dtim_plugin"
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from dtim.watchers.base import WatcherSpec

PROJECT = "dtim"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def dtim_register_watchers() -> Sequence[WatcherSpec]:
    """Return the watcher specs (name, rules, factory) this plugin provides."""
    raise NotImplementedError  # a hookspec has no body of its own


@hookspec
def dtim_register_enrichers() -> Sequence[str]:
    """Return the names of indicator enrichers this plugin provides (``virustotal``)."""
    raise NotImplementedError  # a hookspec has no body of its own
