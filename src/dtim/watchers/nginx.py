"""nginx: the access log (``nginx_access``) and the error log (``nginx_error``)."""

from __future__ import annotations

from collections.abc import Sequence

from dtim.watchers import access, errorlog, errorscreen
from dtim.watchers.base import InputKind, WatcherContext, WatcherSpec
from dtim.watchers.hookspecs import hookimpl


def _access(context: WatcherContext) -> access.AccessWatcher:
    return access.AccessWatcher("nginx_access", context)


def _error(context: WatcherContext) -> errorlog.ErrorLogWatcher:
    return errorlog.ErrorLogWatcher(
        "nginx_error",
        context,
        errorlog.NginxErrorParser,
        screen=errorscreen.NginxErrorScreen,
    )


ACCESS = WatcherSpec(
    "nginx_access",
    "nginx access log: probes, SQLi/XSS/RCE, scanners, 404 floods, login brute force",
    InputKind.FILE,
    access.RULES,
    access.PATTERNS,
    _access,
    access.OPTIONS,
)
ERROR = WatcherSpec(
    "nginx_error",
    "nginx error log: access denied, ModSecurity, limit_req, auth failures, missing-file probes",
    InputKind.FILE,
    errorlog.RULES,
    errorlog.NGINX_PATTERNS,
    _error,
)


@hookimpl
def dtim_register_watchers() -> Sequence[WatcherSpec]:
    """Register the nginx watchers."""
    return (ACCESS, ERROR)
