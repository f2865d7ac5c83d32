"""The demo's ClamAV part: each node's config and database, or one clear note without clamscan."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dtim.config.loader import load_settings
from dtim.demo.generator import DEMO_SIGNATURE, EICAR, signature_database
from dtim.demo.mesh import INFECTED_FILE, DemoNode, clamav_available, configure_clamav


def test_without_clamscan_the_demo_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    said: list[str] = []
    assert clamav_available(said.append) is False
    assert len(said) == 1
    assert "ClamAV is not installed" in said[0]
    assert "skipped" in said[0]
    node = DemoNode("node1", tmp_path / "node1", 1, 2)
    assert "DTIM__WATCHERS__CLAMAV_SCAN_DIR" not in node.environment("https://127.0.0.1:3", 2)


def test_a_node_with_clamav_scans_its_directory_with_the_demo_database(tmp_path: Path) -> None:
    node = DemoNode("node1", tmp_path / 'node "one"', 1, 2, clamav=True)
    (node.home / "config").mkdir(parents=True)
    (node.home / "config" / "dtim.toml").write_text('[watchers]\nclamav_scan_dir = ""\n')
    configure_clamav(node)
    environment = node.environment("https://127.0.0.1:3", 2)
    assert environment["DTIM__WATCHERS__CLAMAV_SCAN_DIR"] == str(node.scan_dir)
    assert node.scan_dir.is_dir()
    settings = load_settings(node.home, environ=environment).settings.watchers
    assert settings.clamav_scan_dir == str(node.scan_dir)
    options = settings.rules["clamav"]
    assert options["clamd_socket"] == ""  # never a system clamd with the official names
    database = Path(options["database"])
    assert database.parent == node.home  # the quotes in the home's name survived TOML
    assert (database / "dtim-demo.hdb").is_file()
    assert INFECTED_FILE.endswith(".exe")


def test_the_demo_database_detects_eicar_with_real_clamscan(tmp_path: Path) -> None:
    if not clamav_available(lambda _message: None):
        pytest.skip("clamscan is not installed (Debian package clamav)")
    database = tmp_path / "db"
    signature_database(database)
    (tmp_path / INFECTED_FILE).write_text(EICAR, encoding="ascii")
    result = subprocess.run(
        ["clamscan", "--no-summary", "-d", str(database), str(tmp_path / INFECTED_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"{DEMO_SIGNATURE}.UNOFFICIAL FOUND" in result.stdout
