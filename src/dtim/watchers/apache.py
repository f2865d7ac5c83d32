"""Apache httpd: the access log (``apache_access``) and the error log (``apache_error``)."""

from __future__ import annotations

from collections.abc import Sequence

from dtim.watchers import access, errorlog, errorscreen
from dtim.watchers.base import InputKind, WatcherContext, WatcherSpec
from dtim.watchers.hookspecs import hookimpl


def _access(context: WatcherContext) -> access.AccessWatcher:
    return access.AccessWatcher("apache_access", context)


def _error(context: WatcherContext) -> errorlog.ErrorLogWatcher:
    return errorlog.ErrorLogWatcher(
        "apache_error",
        context,
        errorlog.ApacheErrorParser,
        errorlog.APACHE_RULES,
        errorscreen.ApacheErrorScreen,
    )


ACCESS = WatcherSpec(
    "apache_access",
    "Apache access log: probes, SQLi/XSS/RCE, scanners, 404 floods, login brute force",
    InputKind.FILE,
    access.RULES,
    access.PATTERNS,
    _access,
    access.OPTIONS,
)
ERROR = WatcherSpec(
    "apache_error",
    "Apache error log: access denied, ModSecurity, auth failures, missing-file probes",
    InputKind.FILE,
    errorlog.APACHE_RULES,
    errorlog.APACHE_PATTERNS,
    _error,
)


@hookimpl
def dtim_register_watchers() -> Sequence[WatcherSpec]:
    """Register the Apache watchers."""
    return (ACCESS, ERROR)
