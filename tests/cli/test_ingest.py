"""``dtim ingest``: JSON lines without evidence, clear exit 2 errors, ``--store`` into the store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from typer.testing import CliRunner

from dtim.cli.common import open_home
from dtim.cli.ingest import ingest_command
from dtim.cli.main import run
from dtim.crypto.evidence import open_evidence
from dtim.crypto.keyring import Keyring
from dtim.model import Evidence
from dtim.service import open_store

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

app = typer.Typer()
app.command("ingest")(ingest_command)


@app.callback()
def _root() -> None:
    """Keep ingest a subcommand, as in the real root app."""


def lines_of(corpus: Path, target: Path) -> Path:
    target.write_text(
        "\n".join(x for x in corpus.read_text().split("\n") if x and not x.startswith("# ")) + "\n"
    )
    return target


def test_json_lines_have_the_fields_and_no_evidence(tmp_path: Path) -> None:
    log = lines_of(SAMPLES / "nginx_access" / "own.log", tmp_path / "access.log")
    result = CliRunner().invoke(
        app, ["ingest", "nginx_access", str(log), "--json", "--home", str(tmp_path / "home")]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {row["rule"] for row in rows} >= {
        "http-rce-payload",
        "http-login-form-bruteforce",
        "http-404-flood",
    }
    assert all(
        set(row)
        == {
            "type",
            "value",
            "confidence",
            "tags",
            "source",
            "rule",
            "sightings",
            "first_seen",
            "last_seen",
            "scope",
        }
        for row in rows
    )
    assert "evidence" not in result.stdout
    assert "POST /wp-login.php" not in result.stdout
    local = [row for row in rows if row["value"] == "10.0.3.7"]
    assert local
    assert all(row["scope"] == "local" for row in local)


def test_zeek_directory_and_table_output(tmp_path: Path) -> None:
    logs = tmp_path / "zeek"
    logs.mkdir()
    lines_of(SAMPLES / "zeek" / "mixed.log", logs / "mixed.log")
    table = CliRunner().invoke(app, ["ingest", "zeek", str(logs), "--home", str(tmp_path / "home")])
    assert table.exit_code == 0
    assert "zeek: 11 detections from 62 lines (3 skipped)" in table.stdout
    result = CliRunner().invoke(
        app, ["ingest", "zeek", str(logs), "--json", "--home", str(tmp_path / "home")]
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"rule": "zeek-malware-host", "value": "108.59.9.32"}.items() <= next(
        r for r in rows if r["rule"] == "zeek-malware-host"
    ).items()
    assert {r["value"] for r in rows if r["rule"] == "zeek-file-hash"} >= {
        "8af45f862cf4c74963053cd9e30b231634b5842c"
    }


def test_unknown_source_and_missing_path_exit_2(tmp_path: Path) -> None:
    unknown = CliRunner().invoke(app, ["ingest", "sendmail", str(tmp_path)])
    assert unknown.exit_code == 2
    assert "unknown source 'sendmail'" in unknown.stderr
    missing = CliRunner().invoke(app, ["ingest", "ufw", str(tmp_path / "nope.log")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr


def test_store_writes_detections_with_sealed_evidence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(["init", "--home", str(home), "--json"]) == 0
    log = lines_of(SAMPLES / "nginx_access" / "own.log", tmp_path / "access.log")
    result = CliRunner().invoke(
        app, ["ingest", "nginx_access", str(log), "--json", "--store", "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    printed = {(row["type"], row["value"]) for row in map(json.loads, result.stdout.splitlines())}
    assert printed

    async def stored() -> tuple[set[tuple[str, str]], list[Evidence]]:
        node = open_home(home, require=True)
        keyring = Keyring.load_or_create(node.keys_dir, now=datetime.now(UTC))
        async with open_store(node) as store:
            found = {(i.type, i.value) for i in await store.list_indicators()}
            first = await store.find_indicator(*sorted(found)[0])
            assert first is not None
            sightings = await store.sightings_for(first.id)
            evidence = [
                open_evidence(keyring, s.sealed_evidence, context=first.id)
                for s in sightings
                if s.sealed_evidence is not None
            ]
            return found, evidence

    found, evidence = asyncio.run(stored())
    assert found == printed
    assert evidence
    assert all(e.lines for e in evidence)
