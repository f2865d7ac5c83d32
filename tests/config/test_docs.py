from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from dtim.config.settings import Settings, sections
from dtim.config.template import render_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "run `dtim config docs > docs/configuration.md`"
    )


def test_every_setting_is_documented_with_help() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name, section in sections(Settings()):
        assert f"## [{name}]" in text
        for item in fields(section):
            assert item.metadata["help"].strip(), f"{name}.{item.name} has no help text"
            assert f"| `{item.name}` |" in text, f"{name}.{item.name} is not documented"
