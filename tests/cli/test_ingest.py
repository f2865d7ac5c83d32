"""``dtim ingest``: JSON lines without evidence, clear exit 2 errors, --store not yet wired."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from dtim.cli.ingest import ingest_command

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


def test_store_is_not_available_yet(tmp_path: Path) -> None:
    log = tmp_path / "ufw.log"
    log.write_text("")
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "dtim.toml").write_text("")
    result = CliRunner().invoke(app, ["ingest", "ufw", str(log), "--store", "--home", str(home)])
    assert result.exit_code == 2
    assert "not available yet" in result.stderr
