"""``dtim privacy check``: values and files, human and JSON output, the home's policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer

from dtim.cli import privacy
from dtim.config import render_config
from dtim.errors import ConfigError, ValidationError

root = typer.Typer()
root.add_typer(privacy.app, name="privacy")


def check(*args: str) -> None:
    root(args=["privacy", "check", *args], prog_name="dtim", standalone_mode=False)


def results(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    check(*args, "--json")
    document = json.loads(capsys.readouterr().out)
    assert list(document) == ["results"]
    return list(document["results"])


def test_a_value_without_a_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    [item] = results(capsys, "10.0.0.5")
    assert item["shared"] is False
    assert item["reason"] == "warninglist"
    assert item["warninglist"] == {
        "list": "rfc1918",
        "entry": "10.0.0.0/8",
        "category": "internal",
        "description": "private IPv4 address space (never routed on the Internet)",
    }
    [item] = results(capsys, "45.33.32.156", "--level", "strict", "--to", "peer-z")
    assert item["destination"] == "peer:peer-z"
    assert item["output"] is not None
    assert set(item["output"]) == {"id", "type", "value", "tlp"}


def test_options_shape_the_indicator_and_the_policy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    [item] = results(
        capsys,
        "45.33.32.156",
        "--level", "open", "--to", "public", "--tlp", "clear",
        "--tag", "ssh-bruteforce", "--tag", "seen on wks7.acme.org", "--own-domain", "acme.org",
    )  # fmt: skip
    assert item["shared"] is True
    assert item["output"]["tags"] == ["ssh-bruteforce"]
    tags = {tag["name"]: tag["kept"] for tag in item["tags"]}
    assert tags == {"seen on wks7.acme.org": False, "ssh-bruteforce": True}
    [item] = results(capsys, "81.2.69.1", "--own-network", "81.2.69.0/24")
    assert item["warninglist"]["list"] == "own-networks"
    [item] = results(
        capsys,
        "evil.xyz",
        "--tlp",
        "amber",
        "--recipient",
        "team-x",
        "--to",
        "p",
        "--peer-group",
        "team-x",
    )
    assert item["shared"] is True
    [item] = results(capsys, "acme-login.xyz", "--org-name", "ACME", "--scope", "private")
    assert item["reason"] == "internal-value"


def test_files_of_every_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lines = tmp_path / "values.txt"
    lines.write_text(
        "# a comment\n45.33.32.156\n\n8.8.8.8\n"
        '{"value": "evil.xyz", "tlp": "red", "recipients": ["p1"]}\n'
    )
    assert [r["shared"] for r in results(capsys, str(lines), "--to", "p1")] == [True, False, True]
    array = tmp_path / "indicators.json"
    array.write_text(
        json.dumps(
            [
                {"value": "45.33.32.156", "type": "ipv4", "first_seen": "2026-01-01T10:20:30Z"},
                "evil.xyz",
            ]
        )
    )
    [first, second] = results(capsys, str(array))
    assert first["output"]["first_seen"] == "2026-01-01T10:00:00.000Z"
    assert second["shared"] is True


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("45.33.32.156\nnot an indicator at all\n", "values.txt:2"),
        ('45.33.32.156\n{"value": \n', "values.txt:2"),
        ("[1, 2", "values.txt:1"),
        ("[42]", "values.txt: item 1"),
        ('[{"value": "999.1.1.1", "type": "ipv4"}]', "values.txt: item 1"),
    ],
)
def test_bad_files_name_the_line(tmp_path: Path, content: str, where: str) -> None:
    path = tmp_path / "values.txt"
    path.write_text(content)
    with pytest.raises(ValidationError) as caught:
        check(str(path))
    assert caught.value.field.endswith(where)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ValidationError, match="cannot read"):
        check(str(path))


def test_bad_level() -> None:
    with pytest.raises(ConfigError, match="--level"):
        check("45.33.32.156", "--level", "loose")


def test_human_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check("45.33.32.156", "--level", "open", "--tag", "user=bob", "--tag", "mirai")
    out = capsys.readouterr().out
    assert "leaves" in out
    assert "tag user=bob" in out
    assert "sent as:" in out
    check("10.1.1.1")
    out = capsys.readouterr().out
    assert "withheld (warninglist)" in out
    assert "rfc1918" in out
    many = tmp_path / "many.txt"
    many.write_text("45.33.32.156\n10.1.1.1\n")
    check(str(many))
    out = capsys.readouterr().out
    assert "45.33.32.156" in out
    assert "rfc1918" in out


def test_the_home_policy_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "node"
    (home / "config").mkdir(parents=True)
    (home / "lists").mkdir()
    (home / "lists" / "partners.txt").write_text("# source: contracts\n45.33.32.0/24\n")
    config = (
        render_config()
        .replace("warninglists = []", 'warninglists = ["lists/partners.txt"]')
        .replace("own_domains = []", 'own_domains = ["acme.org"]')
    )
    (home / "config" / "dtim.toml").write_text(config)
    [item] = results(capsys, "45.33.32.156", "--home", str(home))
    assert item["warninglist"]["list"] == "partners"
    [item] = results(capsys, "vpn.acme.org", "--home", str(home))
    assert item["warninglist"]["list"] == "own-domains"
    policy, lists = privacy.settings_policy(home)
    assert policy.own_domains == ("acme.org",)
    assert [w.name for w in lists] == ["partners"]
