"""The commented config file that ``dtim init`` writes, generated from the declarations."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from dtim.config.settings import EXAMPLE, HELP, SECRET, Settings, sections

_HEADER = """\
# DTIM node configuration.
# Every setting is listed with its default. Paths are relative to the node home.
# Any key can be overridden by an environment variable DTIM__SECTION__KEY,
# for example DTIM__NETWORK__LISTEN_PORT=4030.
"""

# The seed's recommendations, kept next to the sections they are about.
_RECOMMENDATIONS = {
    "security": "Use strong, unique TLS keys per node. Rotate keys regularly (default: 7 days).",
    "network": (
        "All peers must be manually approved: "
        "`dtim peers approve ID` after checking the fingerprint."
    ),
    "privacy": (
        'Default privacy level: "moderate". '
        "Allow custom fields for extensibility, but only those you list."
    ),
    "watchers": (
        "Enable only the log sources relevant to your environment "
        "(an empty path turns a watcher off)."
    ),
}


def render_toml_value(value: Any) -> str:
    """Write a value in TOML syntax (strings, numbers, booleans, arrays, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{key} = {render_toml_value(item)}" for key, item in value.items())
        return "{ " + inner + " }" if inner else "{}"
    return "[" + ", ".join(render_toml_value(item) for item in value) + "]"


def render_config(settings: Settings | None = None) -> str:
    """The full config file for ``settings`` (defaults when None), every key commented."""
    resolved = settings or Settings()
    out = [_HEADER]
    for name, section in sections(resolved):
        out.append(f"\n[{name}]")
        if name in _RECOMMENDATIONS:
            out.append(f"# Recommendation: {_RECOMMENDATIONS[name]}")
        for item in fields(section):
            if item.name == "rules":
                continue
            value = getattr(section, item.name)
            out.append(f"# {item.metadata[HELP]}")
            if item.metadata.get(EXAMPLE):
                out.append(f"# Example: {item.name} = {item.metadata[EXAMPLE]}")
            if item.metadata.get(SECRET):
                out.append(f'# {item.name} = ""  (set it in the environment, never here)')
                continue
            out.append(f"{item.name} = {render_toml_value(value)}")
    out.append(
        "\n# Per-watcher thresholds, for example:\n"
        "# [watchers.nginx_access]\n# probe_threshold = 3\n# probe_window_seconds = 600\n"
    )
    return "\n".join(out) + "\n"


def describe_settings(settings: Settings, *, mask: bool = True) -> dict[str, dict[str, Any]]:
    """The effective settings as plain data, secrets masked (for `dtim config show`)."""
    shown: dict[str, dict[str, Any]] = {}
    for name, section in sections(settings):
        table: dict[str, Any] = {}
        for item in fields(section):
            value = getattr(section, item.name)
            if mask and item.metadata.get(SECRET) and value:
                value = "***"
            elif isinstance(value, Mapping):
                value = {
                    key: dict(inner) if isinstance(inner, Mapping) else inner
                    for key, inner in value.items()
                }
            elif isinstance(value, tuple):
                value = [dict(v) if isinstance(v, Mapping) else v for v in value]
            table[item.name] = value
        shown[name] = table
    return shown


def render_markdown(settings: Settings | None = None) -> str:
    """docs/configuration.md: every setting with its default and help, from the declarations."""
    resolved = settings or Settings()
    out = [
        "# Configuration reference",
        "",
        "Generated from the setting declarations in `src/dtim/config/settings.py` by",
        "`dtim config docs`; a test fails when this page and the code disagree.",
        "",
        "Order of precedence: defaults < `config/dtim.toml` < environment `DTIM__SECTION__KEY`",
        "< `--set section.key=value`. Paths are relative to the node home.",
    ]
    for name, section in sections(resolved):
        out += [
            "",
            f"## [{name}]",
            "",
            (type(section).__doc__ or "").strip(),
            "",
            "| key | default | meaning |",
            "| --- | --- | --- |",
        ]
        for item in fields(section):
            default = (
                ""
                if item.metadata.get(SECRET)
                else render_toml_value(getattr(section, item.name)).replace("|", "\\|")
            )
            out.append(f"| `{item.name}` | `{default}` | {item.metadata[HELP]} |")
    return "\n".join(out) + "\n"
