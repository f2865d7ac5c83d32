"""``dtim taxii users|pull`` and ``dtim indicators export|import`` over a memory feed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from dtim.cli import indicators_io
from dtim.cli import taxii as taxii_cli
from dtim.model import FakeClock, JsonValue, Tlp
from dtim.taxii.backend import MemoryFeed
from dtim.taxii.runtime import NodeRuntime
from dtim.taxii.wiring import privacy_acceptor
from tests.taxii.conftest import PASSWORD, START, Running, privacy_filter, sample_indicators, sharer


class DictState:
    """The store's state table, in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, JsonValue] = {}

    async def get_state(self, key: str) -> JsonValue:
        return self.values.get(key)

    async def set_state(self, key: str, value: JsonValue) -> None:
        self.values[key] = value


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[NodeRuntime]:
    clock = FakeClock(START)
    node = NodeRuntime(
        feed=MemoryFeed(clock),
        sharer=sharer(),
        accounts_path=tmp_path / "taxii-users.json",
        state=DictState(),
        clock=clock,
        accept=privacy_acceptor(privacy_filter()),
    )

    @asynccontextmanager
    async def factory(home: Path | None, sets: list[str] | None) -> AsyncIterator[NodeRuntime]:
        yield node

    taxii_cli.configure(factory)
    yield node
    taxii_cli.configure(None)


def _io_app() -> typer.Typer:
    app = typer.Typer()
    app.command("export")(indicators_io.export)
    app.command("import")(indicators_io.import_)
    return app


def test_users_add_list_remove(runtime: NodeRuntime) -> None:
    runner = CliRunner()
    added = runner.invoke(
        taxii_cli.app,
        ["users", "add", "siem", "--password-stdin", "--level", "open", "--tlp", "amber", "--json"],
        input=f"{PASSWORD}\n",
    )
    assert added.exit_code == 0, added.output
    assert orjson.loads(added.stdout)["tlps"] == ["clear", "amber"]
    listed = runner.invoke(taxii_cli.app, ["users", "list", "--json"])
    assert [u["name"] for u in orjson.loads(listed.stdout)] == ["siem"]
    assert "argon2" in runtime.accounts_path.read_text()
    assert PASSWORD not in runtime.accounts_path.read_text()
    assert runtime.accounts_path.stat().st_mode & 0o777 == 0o600
    again = runner.invoke(
        taxii_cli.app, ["users", "add", "siem", "--password-stdin"], input=f"{PASSWORD}\n"
    )
    assert again.exit_code != 0
    removed = runner.invoke(taxii_cli.app, ["users", "remove", "siem"])
    assert removed.exit_code == 0
    assert orjson.loads(runner.invoke(taxii_cli.app, ["users", "list", "--json"]).stdout) == []


def test_users_add_needs_a_password_or_certificate(runtime: NodeRuntime) -> None:
    result = CliRunner().invoke(taxii_cli.app, ["users", "add", "siem"])
    assert result.exit_code != 0
    assert not runtime.accounts_path.exists()


def test_pull_ingests_with_a_source_tag_and_resumes(runtime: NodeRuntime, running: Running) -> None:
    running.server.feed.add(sample_indicators(30))  # type: ignore[attr-defined]
    runner = CliRunner()
    args = [
        "pull",
        running.url,
        "--collection",
        "tlp-green",
        "--user",
        "reader",
        "--password-stdin",
        "--json",
    ]
    first = runner.invoke(taxii_cli.app, args, input=f"{PASSWORD}\n")
    assert first.exit_code == 0, first.output
    summary = orjson.loads(first.stdout)
    assert summary["indicators"] == 30
    feed = runtime.feed
    assert isinstance(feed, MemoryFeed)
    assert len(feed) == 30
    stored = next(iter(feed._current.values())).indicator
    assert stored.sources == ("taxii:127.0.0.1",)
    assert stored.tlp is Tlp.GREEN
    second = runner.invoke(taxii_cli.app, args, input=f"{PASSWORD}\n")
    assert orjson.loads(second.stdout)["indicators"] == 0  # resumed after the remembered point
    wrong = runner.invoke(taxii_cli.app, [*args[:-1]], input="not the password\n")
    assert wrong.exit_code != 0


def test_export_every_format_and_import_back(runtime: NodeRuntime, tmp_path: Path) -> None:
    feed = runtime.feed
    assert isinstance(feed, MemoryFeed)
    feed.add(sample_indicators(20))
    feed.add(sample_indicators(5, tlp=Tlp.AMBER, start=100))
    runner = CliRunner()
    app = _io_app()
    for fmt in ("stix", "csv", "txt", "json"):
        out = tmp_path / f"export.{fmt}"
        result = runner.invoke(
            app, ["export", "--format", fmt, "--level", "open", "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
    assert len((tmp_path / "export.txt").read_text().splitlines()) == 20  # AMBER was not asked for
    assert len(orjson.loads((tmp_path / "export.json").read_bytes())) == 20
    result = runner.invoke(app, ["export", "--format", "misp", "--out", str(tmp_path / "misp")])
    assert result.exit_code == 0
    assert (tmp_path / "misp" / "manifest.json").exists()
    filtered = runner.invoke(app, ["export", "--format", "txt", "--type", "domain"])
    assert filtered.exit_code == 0
    assert filtered.stdout == ""

    target = MemoryFeed(FakeClock(START))
    runtime.feed = target
    for name, fmt in (("export.stix", "stix"), ("export.csv", "csv"), ("misp", "misp")):
        result = runner.invoke(app, ["import", str(tmp_path / name), "--format", fmt, "--json"])
        assert result.exit_code == 0, result.output
        assert orjson.loads(result.stdout)["indicators"] == 20
    assert len(target) == 20


def test_import_of_a_malformed_file_stores_nothing(runtime: NodeRuntime, tmp_path: Path) -> None:
    good = orjson.dumps(
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2026-01-01T00:00:00Z",
            "modified": "2026-01-01T00:00:00Z",
            "pattern": "[domain-name:value = 'bad-actor-c2.net']",
            "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z",
        }
    )
    path = tmp_path / "broken.json"
    path.write_bytes(
        b'{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[\n'
        + good
        + b",\n{oops\n]}\n"
    )
    result = CliRunner().invoke(_io_app(), ["import", str(path)])
    assert result.exit_code != 0
    assert len(runtime.feed) == 0  # type: ignore[arg-type]
