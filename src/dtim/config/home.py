"""The node home directory: where config, keys, certificates and data live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dtim.config.settings import Settings

DEFAULT_HOME = "dtim-home"


def resolve_home(explicit: str | Path | None = None) -> Path:
    """``--home``, else ``$DTIM_HOME``, else ``./dtim-home``, made absolute."""
    chosen = explicit or os.environ.get("DTIM_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class NodeHome:
    """Paths of one node home, resolved against its settings."""

    root: Path
    settings: Settings

    @property
    def config_dir(self) -> Path:
        """``config/``."""
        return self.root / "config"

    @property
    def keys_dir(self) -> Path:
        """``keys/`` (mode 0700): identity key pair and keyring."""
        return self.root / "keys"

    @property
    def certs_dir(self) -> Path:
        """``certs/``: node CA and node certificate."""
        return self.root / "certs"

    @property
    def data_dir(self) -> Path:
        """``data/``: database and encrypted logs."""
        return self.root / "data"

    def path(self, configured: str) -> Path:
        """A configured path, relative to the home unless absolute."""
        candidate = Path(configured).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    @property
    def tls_cert(self) -> Path:
        """The node certificate."""
        return self.path(self.settings.security.tls_cert_path)

    @property
    def tls_key(self) -> Path:
        """The node certificate's private key."""
        return self.path(self.settings.security.tls_key_path)

    @property
    def tls_ca(self) -> Path:
        """The node CA certificate."""
        return self.path(self.settings.security.tls_ca_path)

    @property
    def encrypted_logs(self) -> Path:
        """The audit log directory."""
        return self.path(self.settings.storage.encrypted_logs_path)

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path resolved against the home."""
        url = self.settings.storage.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.root / url[len(prefix) :])
        return url
