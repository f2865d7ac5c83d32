from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dtim.config import Settings, describe_settings, load_settings, render_config
from dtim.errors import ConfigError


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "dtim.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_follow_the_seed(tmp_path: Path) -> None:
    settings = load_settings(tmp_path).settings
    assert settings.network.gossip_interval_seconds == 60
    assert settings.network.peers_per_round == 3
    assert settings.privacy.level == "moderate"
    assert settings.security.key_rotation_days == 7
    assert settings.storage.database_url == "sqlite:///data/dtim.db"
    assert settings.network.listen_port == 3030
    assert settings.admin.listen_port == 3031
    assert settings.network.registry_opt_in is False


def test_template_holds_every_seed_key_and_loads_back(tmp_path: Path) -> None:
    text = render_config()
    parsed = tomllib.loads(text)
    seed_keys = {
        "security": ["key_rotation_days", "tls_cert_path", "tls_key_path"],
        "storage": ["encrypted_logs_path"],
        "network": ["gossip_interval_seconds", "peers_per_round", "default_peers", "registry_url"],
        "privacy": ["level", "allow_custom_fields"],
        "watchers": [
            "ufw_log_path",
            "fail2ban_log_path",
            "suricata_log_path",
            "zeek_log_dir",
            "clamav_scan_dir",
            "nginx_access_log",
            "nginx_error_log",
            "apache_access_log",
            "apache_error_log",
        ],
    }
    for section, keys in seed_keys.items():
        for key in keys:
            assert key in parsed[section], f"{section}.{key} missing from the template"
    assert (
        "virustotal_api_key" in text
    )  # documented, but only as a comment: secrets come from the environment
    assert "virustotal_api_key =" not in text.replace('# virustotal_api_key = ""', "")
    write_config(tmp_path, text)
    loaded = load_settings(tmp_path)
    assert loaded.warnings == ()
    assert loaded.settings == Settings()


def test_bad_type_names_file_key_line_and_expectation(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, '[network]\n# comment\ngossip_interval_seconds = 60\npeers_per_round = "three"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    error = info.value
    assert (error.path, error.key, error.line) == (str(path), "network.peers_per_round", 4)
    assert f"{path}:4: network.peers_per_round: expected an integer, got 'three'" == str(error)


def test_bad_choice_is_reported(tmp_path: Path) -> None:
    write_config(tmp_path, '[privacy]\nlevel = "paranoid"\n')
    with pytest.raises(
        ConfigError,
        match=r"dtim.toml:2: privacy.level: expected one of 'strict', 'moderate', 'open'",
    ):
        load_settings(tmp_path)


def test_toml_syntax_error_has_a_line_number(tmp_path: Path) -> None:
    write_config(tmp_path, '[network]\nlisten_port = 3030\nregistry_url = "unterminated\n')
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_settings(tmp_path)
    assert info.value.line == 3


def test_unknown_keys_and_sections_are_warnings(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[network]\nlisten_prot = 1\n\n[nonsense]\na = 1\n")
    loaded = load_settings(tmp_path)
    assert f"{path}:2: unknown key network.listen_prot ignored" in loaded.warnings
    assert any("unknown section [nonsense]" in w for w in loaded.warnings)


def test_environment_and_set_override_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, "[network]\nlisten_port = 3030\npeers_per_round = 5\n")
    loaded = load_settings(
        tmp_path,
        environ={
            "DTIM__NETWORK__LISTEN_PORT": "4030",
            "DTIM__PRIVACY__OWN_NETWORKS": "10.1.0.0/16, 192.0.2.0/24",
            "DTIM__NETWORK__REGISTRY_OPT_IN": "yes",
        },
        overrides={"network.peers_per_round": "7"},
    )
    assert loaded.settings.network.listen_port == 4030
    assert loaded.settings.network.peers_per_round == 7
    assert loaded.settings.network.registry_opt_in is True
    assert loaded.settings.privacy.own_networks == ("10.1.0.0/16", "192.0.2.0/24")


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DTIM__ADMIN__LISTEN_PORT") as info:
        load_settings(tmp_path, environ={"DTIM__ADMIN__LISTEN_PORT": "70000"})
    assert info.value.key == "admin.listen_port"


def test_secrets_come_from_the_environment_only(tmp_path: Path) -> None:
    write_config(tmp_path, '[watchers]\nvirustotal_api_key = "YOUR_API_KEY_HERE"\n')
    with pytest.raises(ConfigError, match="DTIM__WATCHERS__VIRUSTOTAL_API_KEY") as info:
        load_settings(tmp_path)
    assert "YOUR_API_KEY_HERE" not in str(info.value)
    (tmp_path / "config" / "dtim.toml").unlink()
    secret = "vt-secret-0123456789"
    loaded = load_settings(tmp_path, environ={"DTIM__WATCHERS__VIRUSTOTAL_API_KEY": secret})
    assert loaded.settings.watchers.virustotal_api_key == secret
    assert secret not in repr(loaded.settings)
    assert describe_settings(loaded.settings)["watchers"]["virustotal_api_key"] == "***"


def test_per_watcher_tables_and_peer_entries(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        '[network]\ndefault_peers = ["https://a.example:3030", '
        '{ endpoint = "https://b.example:3030", public_key = "AAAA" }]\n'
        "[watchers.nginx_access]\nprobe_threshold = 5\n",
    )
    settings = load_settings(tmp_path).settings
    assert settings.watchers.rules["nginx_access"]["probe_threshold"] == 5
    assert settings.network.default_peers[1]["public_key"] == "AAAA"
    write_config(tmp_path, "[network]\ndefault_peers = [42]\n")
    with pytest.raises(ConfigError, match="each peer is a URL"):
        load_settings(tmp_path)


def test_missing_file_can_be_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dtim init"):
        load_settings(tmp_path, require_file=True)
