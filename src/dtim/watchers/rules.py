"""Detection rules: thresholds, windows, confidence and tags, with per-watcher overrides.

Defaults follow fail2ban and CrowdSec practice (issue 4): SSH-style failures
5 in 10 minutes, web exploit probes 3 in 10 minutes, failed logins 10 in 10
minutes, 404s 20 in 5 minutes, a known scanner user agent at once, ufw 10
distinct ports in 60 s or 30 blocks in 10 minutes. A ``[watchers.<name>]``
table overrides them, one sub-table per rule::

    [watchers.nginx_access.http-404-flood]
    threshold = 40
    window = "5m"
    bucket = "leaky"     # CrowdSec-style leaky bucket instead of a sliding window
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from dtim.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RULE_KEYS = ("threshold", "window", "confidence", "tags", "cooldown", "enabled", "bucket")


class Bucket(StrEnum):
    """How events are counted: a sliding window of log time, or a leaky bucket."""

    WINDOW = "window"
    LEAKY = "leaky"


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule and its thresholds.

    Attributes:
        name: stable rule name, reported in sightings (``http-404-flood``).
        summary: what the rule detects, for docs and ``dtim plugins``.
        threshold: events (or distinct values) per key that make it fire; 1 fires at once.
        window: seconds of log time the events must fall in (the leak period for leaky buckets).
        confidence: confidence (0-100) of the indicator a firing produces.
        tags: tags of that indicator.
        cooldown: seconds a key stays silent after firing (CrowdSec's blackhole); None = window.
        enabled: a disabled rule never fires.
        bucket: sliding window or leaky bucket.
    """

    name: str
    summary: str
    threshold: int
    window: float
    confidence: int
    tags: tuple[str, ...]
    cooldown: float | None = None
    enabled: bool = True
    bucket: Bucket = Bucket.WINDOW

    @property
    def silence(self) -> float:
        """Seconds a key is muted after the rule fired."""
        if self.cooldown is not None:
            return self.cooldown
        return self.window if self.window > 0 else 600.0

    @property
    def span(self) -> float:
        """How long state for one key can matter: the longer of window and cooldown."""
        return max(self.window, self.silence, 1.0)


def parse_duration(raw: object, key: str) -> float:
    """Read seconds from a number or a string such as ``"90s"``, ``"10m"``, ``"1h"``.

    Raises:
        ConfigError: the value is not a non-negative duration.
    """
    if isinstance(raw, bool):
        raise ConfigError(f"expected a duration, got {raw!r}", key=key)
    if isinstance(raw, int | float):
        seconds = float(raw)
    elif isinstance(raw, str) and (match := _DURATION.match(raw)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ConfigError(f'expected a duration such as 600, "90s" or "10m", got {raw!r}', key=key)
    if seconds < 0:
        raise ConfigError(f"a duration cannot be negative ({raw!r})", key=key)
    return seconds


def _integer(raw: object, key: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise ConfigError(f"expected an integer {low}-{high}, got {raw!r}", key=key)
    return raw


def override_rule(rule: Rule, table: Mapping[str, object], prefix: str) -> Rule:
    """Apply one ``[watchers.<name>.<rule>]`` table to a rule.

    Raises:
        ConfigError: an unknown key or a bad value, naming the dotted key.
    """
    changes: dict[str, object] = {}
    for key, raw in table.items():
        dotted = f"{prefix}.{key}"
        if key == "threshold":
            changes["threshold"] = _integer(raw, dotted, 1, 1_000_000)
        elif key == "window":
            changes["window"] = parse_duration(raw, dotted)
        elif key == "cooldown":
            changes["cooldown"] = parse_duration(raw, dotted)
        elif key == "confidence":
            changes["confidence"] = _integer(raw, dotted, 0, 100)
        elif key == "enabled":
            if not isinstance(raw, bool):
                raise ConfigError(f"expected true or false, got {raw!r}", key=dotted)
            changes["enabled"] = raw
        elif key == "tags":
            if not isinstance(raw, list | tuple) or not all(isinstance(t, str) for t in raw):
                raise ConfigError("expected a list of strings", key=dotted)
            changes["tags"] = tuple(str(t) for t in raw)
        elif key == "bucket":
            try:
                changes["bucket"] = Bucket(str(raw))
            except ValueError:
                raise ConfigError(
                    f'expected "window" or "leaky", got {raw!r}', key=dotted
                ) from None
        else:
            known = ", ".join(_RULE_KEYS)
            raise ConfigError(f"unknown rule setting {key!r} (known: {known})", key=dotted)
    updated = replace(rule, **changes)  # type: ignore[arg-type]  # keys checked one by one above
    if updated.bucket is Bucket.LEAKY and updated.window <= 0:
        raise ConfigError(
            "a leaky bucket needs a window (its leak period) above 0", key=f"{prefix}.window"
        )
    return updated


def configure(
    watcher: str,
    defaults: tuple[Rule, ...],
    settings: Mapping[str, object],
    options: Mapping[str, str],
) -> tuple[dict[str, Rule], dict[str, object]]:
    """Split a ``[watchers.<name>]`` table into rule overrides and watcher options.

    Returns:
        The rules by name (defaults with overrides applied) and the watcher options given.

    Raises:
        ConfigError: a key that is neither a rule nor a known option, or a bad rule value.
    """
    rules = {rule.name: rule for rule in defaults}
    chosen: dict[str, object] = {}
    for key, value in settings.items():
        prefix = f"watchers.{watcher}.{key}"
        if key in rules:
            if not isinstance(value, Mapping):
                raise ConfigError("a rule override must be a table", key=prefix)
            rules[key] = override_rule(rules[key], value, prefix)
        elif key in options:
            chosen[key] = value
        else:
            known = ", ".join(sorted([*rules, *options]))
            raise ConfigError(f"unknown setting {key!r} (rules and options: {known})", key=prefix)
    return rules, chosen


def option_str(options: Mapping[str, object], key: str, default: str, watcher: str) -> str:
    """A string option, or its default.

    Raises:
        ConfigError: the value is not a string.
    """
    value = options.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {value!r}", key=f"watchers.{watcher}.{key}")
    return value


def option_list(
    options: Mapping[str, object], key: str, default: tuple[str, ...], watcher: str
) -> tuple[str, ...]:
    """A list-of-strings option, or its default.

    Raises:
        ConfigError: the value is not a list of strings.
    """
    value = options.get(key, default)
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ConfigError("expected a list of strings", key=f"watchers.{watcher}.{key}")
    return tuple(str(item) for item in value)
