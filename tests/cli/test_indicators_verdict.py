"""``dtim indicators verdict`` on a real node home: JSON output, the audit log, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtim.cli.main import run
from dtim.crypto.auditlog import AuditLog
from dtim.crypto.keyring import Keyring
from dtim.model.indicator import VERDICT_FIELD

VALUE = "45.155.3.9"


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = tmp_path / "node"
    assert run(["init", "--home", str(root), "--endpoint", "https://127.0.0.1:3030", "--json"]) == 0
    assert run(["indicators", "add", "ipv4", VALUE, "--home", str(root), "--json"]) == 0
    capsys.readouterr()
    return root


def test_false_positive_by_value_prints_one_json_document(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["indicators", "verdict", VALUE, "false-positive", "--reason", "lab"]
    code = run([*args, "--home", str(home), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    done = json.loads(out)
    assert done["verdict"] == "false_positive"
    assert done["shared"] is True
    assert len(done["tombstone"]) == 64

    assert run(["indicators", "show", done["id"], "--home", str(home), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["confidence"] == 0
    assert shown["scope"] == "local"
    assert shown["custom_fields"][VERDICT_FIELD]["reason"] == "lab"

    log = AuditLog(home / "data" / "logs", Keyring.load(home / "keys"))
    events = [r for d in log.days() for r in log.read(d) if r["event"] == "indicator_verdict"]
    assert [(e["indicator"], e["verdict"], e["actor"]) for e in events] == [
        (done["id"], "false_positive", "cli")
    ]


def test_text_output_says_where_the_verdict_went(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["indicators", "verdict", VALUE, "revoked", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("revoked: ipv4 45.155.3.9")
    assert "for every peer until" in out


def test_bad_input_exits_non_zero_and_changes_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["indicators", "verdict", VALUE, "benign", "--home", str(home)]) != 0
    assert "unknown verdict 'benign'" in capsys.readouterr().err
    assert run(["indicators", "verdict", "45.155.3.10", "revoked", "--home", str(home)]) != 0
    assert "no indicator with id or value '45.155.3.10'" in capsys.readouterr().err
    assert run(["indicators", "show", VALUE, "--home", str(home), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["confidence"] == 70
    assert VERDICT_FIELD not in shown["custom_fields"]
