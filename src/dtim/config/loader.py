"""Read settings: defaults < TOML file < ``DTIM__SECTION__KEY`` environment < ``--set``.

Every error names the file, the key, the line where TOML gives it and what
was expected, as a :class:`~dtim.errors.ConfigError`; unknown keys become
warnings rather than being silently ignored.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_type_hints

from dtim.config.settings import SECRET, Settings, section_types
from dtim.errors import ConfigError

CONFIG_RELATIVE_PATH = Path("config") / "dtim.toml"
ENV_PREFIX = "DTIM__"
_SYNTAX_LINE = re.compile(r"at line (\d+)")
_CHOICES = {
    ("privacy", "level"): ("strict", "moderate", "open"),
    ("privacy", "timestamp_precision"): ("second", "minute", "hour", "day"),
    ("watchers", "start_at"): ("end", "beginning"),
    ("integrations", "syslog_cef_transport"): ("udp", "tcp"),
    ("logging", "format"): ("text", "json"),
    ("logging", "level"): ("debug", "info", "warning", "error"),
}
_PORTS = {("network", "listen_port"), ("admin", "listen_port"), ("registry", "listen_port")}


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus where they came from and what was odd about them."""

    settings: Settings
    path: Path | None
    warnings: tuple[str, ...]


def config_path(home: Path) -> Path:
    """The config file of a node home."""
    return home / CONFIG_RELATIVE_PATH


def load_settings(
    home: Path,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    require_file: bool = False,
) -> LoadedSettings:
    """Resolve the settings of the node at ``home``.

    Args:
        home: the node home; its ``config/dtim.toml`` is read when present.
        environ: the environment to read ``DTIM__SECTION__KEY`` from (default ``os.environ``).
        overrides: ``section.key`` to raw string value, from ``--set``.
        require_file: fail when the config file is missing.

    Raises:
        ConfigError: naming the file, key and line of the first problem.
    """
    path = config_path(home)
    warnings: list[str] = []
    raw: dict[str, Any] = {}
    text = ""
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc}", path=str(path)) from exc
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = _SYNTAX_LINE.search(str(exc))
            line = int(match.group(1)) if match else None
            raise ConfigError(f"invalid TOML: {exc}", path=str(path), line=line) from exc
        except RecursionError:
            # tomllib recurses once per nested array or inline table.
            raise ConfigError("invalid TOML: nested too deeply", path=str(path)) from None
    elif require_file:
        raise ConfigError("config file not found (run `dtim init` first)", path=str(path))

    values: dict[str, dict[str, Any]] = {name: {} for name in section_types()}
    for section, table in raw.items():
        if section not in values:
            warnings.append(
                _where(path, text, section, None) + f"unknown section [{section}] ignored"
            )
            continue
        if not isinstance(table, dict):
            raise ConfigError(
                f"[{section}] must be a table", path=str(path), line=_line(text, section, None)
            )
        for key, value in table.items():
            _take(values, section, key, value, source=("file", path, text), warnings=warnings)

    env = os.environ if environ is None else environ
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2:
            warnings.append(f"environment {name}: expected DTIM__SECTION__KEY, ignored")
            continue
        _take(values, parts[0], parts[1], value, source=("env", name, ""), warnings=warnings)

    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        _take(values, section, key, value, source=("set", dotted, ""), warnings=warnings)

    settings = Settings()
    for section, table in values.items():
        section_obj = replace(getattr(settings, section), **table)
        settings = replace(settings, **{section: section_obj})
    return LoadedSettings(
        settings=settings, path=path if path.exists() else None, warnings=tuple(warnings)
    )


def _take(
    values: dict[str, dict[str, Any]],
    section: str,
    key: str,
    value: Any,
    *,
    source: tuple[str, Any, str],
    warnings: list[str],
) -> None:
    kind, origin, text = source
    file_path = str(origin) if kind == "file" else None
    line = _line(text, section, key) if kind == "file" else None
    label = f"{section}.{key}"
    section_cls = section_types().get(section)
    if section_cls is None:
        warnings.append(f"{_origin(kind, origin)}: unknown section {section!r} ignored")
        return
    declared = {f.name: f for f in fields(section_cls)}
    if section == "watchers" and key not in declared and isinstance(value, dict):
        # [watchers.<name>] tables carry per-watcher thresholds.
        rules = dict(values[section].get("rules", {}))
        rules[key] = MappingProxyType(dict(value))
        values[section]["rules"] = MappingProxyType(rules)
        return
    if key not in declared:
        where = f"{file_path}:{line}: " if file_path and line else f"{_origin(kind, origin)}: "
        warnings.append(f"{where}unknown key {label} ignored")
        return
    if declared[key].metadata.get(SECRET) and kind == "file" and value != "":
        raise ConfigError(
            "secrets are read from the environment only; remove it from the file and set "
            f"{ENV_PREFIX}{section.upper()}__{key.upper()}",
            path=file_path,
            key=label,
            line=line,
        )
    hint = get_type_hints(section_cls)[key]
    try:
        converted = _convert(hint, value, from_text=kind != "file")
        _check(section, key, converted)
    except ValueError as exc:
        if kind == "file":
            raise ConfigError(str(exc), path=file_path, key=label, line=line) from None
        raise ConfigError(f"{exc} (from {_origin(kind, origin)})", key=label) from None
    values[section][key] = converted


def _convert(hint: Any, value: Any, *, from_text: bool) -> Any:
    origin = getattr(hint, "__origin__", None)
    if hint is bool:
        if from_text and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {value!r}")
    if hint is int:
        if from_text and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"expected an integer, got {value!r}")
    if hint is float:
        number: float | None = None
        if from_text and isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value.strip())
        elif isinstance(value, int | float) and not isinstance(value, bool):
            with contextlib.suppress(OverflowError):  # an integer beyond any float
                number = float(value)
        # nan and inf pass every range check below and then break timers and decay curves.
        if number is None or not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, got {value!r}")
    if origin is tuple:
        items = value
        if from_text and isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                try:
                    items = json.loads(stripped)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"expected a JSON array: {exc}") from None
                except RecursionError:
                    raise ValueError("expected a JSON array: nested too deeply") from None
            else:
                items = [part.strip() for part in stripped.split(",") if part.strip()]
        if not isinstance(items, list):
            raise ValueError(f"expected a list, got {value!r}")
        item_hint = hint.__args__[0]
        if item_hint is str and not all(isinstance(item, str) for item in items):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return tuple(items)
    if isinstance(value, dict):
        return MappingProxyType(dict(value))
    raise ValueError(f"expected a table, got {value!r}")


def _check(section: str, key: str, value: Any) -> None:
    choices = _CHOICES.get((section, key))
    if choices is not None and value not in choices:
        raise ValueError(f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    if (section, key) in _PORTS and not 0 <= value <= 65535:
        raise ValueError(f"expected a port 0-65535, got {value}")
    if (
        section == "network"
        and key in {"gossip_interval_seconds", "request_timeout_seconds"}
        and value <= 0
    ):
        raise ValueError(f"expected a positive number of seconds, got {value}")
    if (
        section == "network"
        and key in {"peers_per_round", "max_body_bytes", "max_new_reports_per_peer"}
        and value < 1
    ):
        raise ValueError(f"expected at least 1, got {value}")
    if (section, key) in {
        ("security", "key_rotation_days"),
        ("security", "signature_window_seconds"),
        ("network", "max_verdicts_per_unapproved_issuer"),
    } and value < 0:
        raise ValueError(f"expected zero or more, got {value}")
    if section == "aging" and value <= 0:
        raise ValueError(f"expected a positive number, got {value}")
    if section == "privacy" and key == "dp_epsilon" and value < 0:
        raise ValueError(f"expected zero (off) or a positive epsilon, got {value}")
    if (
        section == "storage"
        and key == "database_url"
        and not value.startswith(("sqlite:", "postgresql:", "postgresql+"))
    ):
        raise ValueError(f"expected a sqlite:/// or postgresql:// URL, got {value!r}")
    if section == "integrations" and key == "webhooks":
        for entry in value:
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("url"), str)
                or not isinstance(entry.get("secret_env"), str)
            ):
                raise ValueError(f"each webhook is a table with url and secret_env, got {entry!r}")
    if section == "network" and key == "default_peers":
        for entry in value:
            if isinstance(entry, str):
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("endpoint"), str):
                raise ValueError(
                    f"each peer is a URL or a table with endpoint (and public_key), got {entry!r}"
                )


def _origin(kind: str, origin: Any) -> str:
    return {"env": f"environment {origin}", "set": f"--set {origin}"}.get(kind, str(origin))


def _where(path: Path, text: str, section: str, key: str | None) -> str:
    line = _line(text, section, key)
    return f"{path}:{line}: " if line else f"{path}: "


def _line(text: str, section: str, key: str | None) -> int | None:
    """Find the 1-based line where ``[section]`` (and ``key`` in it) is written."""
    current = None
    header = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
    for number, line in enumerate(text.splitlines(), start=1):
        match = header.match(line)
        if match:
            current = match.group(1)
            if key is None and current == section:
                return number
            continue
        if key is not None and current == section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return None
