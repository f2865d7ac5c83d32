"""``dtim backup`` / ``dtim restore``: keys, certificates, config and store in one encrypted file.

The SQLite database is copied with SQLite's online backup API, so a running
node can be backed up. A PostgreSQL store is backed up with ``pg_dump``
(see docs/operations.md); the archive then still carries everything else.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import tarfile
import tempfile
from pathlib import Path

from dtim.config import NodeHome
from dtim.crypto.keyfiles import ensure_private_dir, write_secret
from dtim.crypto.sealedfile import open_with_passphrase, seal_with_passphrase
from dtim.errors import ConfigError

DB_MEMBER = "data/dtim.db"
_DIRECTORIES = ("config", "keys", "certs")
_KEPT_MODE = 0o755  # no setuid, setgid, sticky or group/other write bits


def make_backup(home: NodeHome, out: Path, passphrase: str) -> list[str]:
    """Write an encrypted archive of ``home`` to ``out`` (mode 0600); returns the member names."""
    buffer = io.BytesIO()
    members: list[str] = []
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for directory in _DIRECTORIES:
            path = home.root / directory
            if path.is_dir():
                archive.add(path, arcname=directory)
                members.append(directory)
        url = home.database_url
        if url.startswith("sqlite:///"):
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / "dtim.db"
                source = sqlite3.connect(url[len("sqlite:///") :])
                target = sqlite3.connect(copy)
                with target:
                    source.backup(target)
                source.close()
                target.close()
                archive.add(copy, arcname=DB_MEMBER)
                members.append(DB_MEMBER)
    write_secret(out, seal_with_passphrase(buffer.getvalue(), passphrase))
    return members


def restore_backup(
    archive_path: Path, target: Path, passphrase: str, *, force: bool = False
) -> list[str]:
    """Unpack an archive made by :func:`make_backup` into ``target``.

    Raises:
        ConfigError: the target is already a home and ``force`` is not set, or the archive is
            unsafe.
        CryptoError: wrong passphrase or tampered archive.
    """
    if (target / "config" / "dtim.toml").exists() and not force:
        raise ConfigError(f"{target} is already a DTIM home; pass --force to overwrite it")
    data = open_with_passphrase(archive_path.read_bytes(), passphrase)
    restored: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = Path(member.name)
            if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                raise ConfigError(f"{archive_path}: unsafe archive member {member.name!r}")
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        restored = [_unpack(archive, member, root) for member in archive.getmembers()]
    ensure_private_dir(target / "keys")
    for secret in (target / "keys").iterdir():
        os.chmod(secret, 0o600 if secret.is_file() else 0o700)
    for key in (target / "certs").glob("*.key"):
        os.chmod(key, 0o600)
    return [name for name in restored if name]


def _unpack(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    """Write one checked member (a directory or regular file) under ``target`` (resolved);
    returns the file's name, or "" for a directory. No owner, link or setuid bit of the
    archive is kept and nothing is written through a link already in ``target``: what
    tarfile's "data" filter does, which the CPython 3.11 of some distributions (before
    3.11.4) does not have."""
    path = target / member.name
    mode = member.mode & _KEPT_MODE
    directory = path if member.isdir() else path.parent
    # A directory of the target that is a link elsewhere would carry the write out of it
    # (resolved before anything is made: the parts that exist are followed, the rest kept).
    if not directory.resolve().is_relative_to(target):
        raise ConfigError(f"{directory}: a link out of {target}; cannot restore {member.name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    if member.isdir():
        os.chmod(path, mode | 0o700)
        return ""
    source = archive.extractfile(member)
    if source is None:
        raise ConfigError(f"unreadable archive member {member.name!r}")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot restore {member.name!r}: {exc.strerror}") from exc
    with source, os.fdopen(descriptor, "wb") as out:
        shutil.copyfileobj(source, out)
        os.fchmod(out.fileno(), mode | 0o600)
    return member.name
