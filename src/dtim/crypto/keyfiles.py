"""Secret files on disk: private directories, atomic 0600 writes, OpenSSH-style permission checks.

Every key DTIM writes goes through :func:`write_secret`, so a crash never leaves a
half-written key behind and a key is never readable by group or others, not even
for the instant between creating and chmod-ing it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dtim.errors import CryptoError

PRIVATE_DIR_MODE = 0o700
SECRET_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


def ensure_private_dir(directory: Path) -> Path:
    """Create ``directory`` (and parents) with mode 0700 if missing; tighten it if too open.

    Raises:
        CryptoError: the path exists and is not a directory, or cannot be created.
    """
    try:
        directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        if not directory.is_dir():
            raise CryptoError(f"{directory}: expected a directory for keys")
        if stat.S_IMODE(directory.stat().st_mode) & 0o077:
            directory.chmod(PRIVATE_DIR_MODE)
    except OSError as exc:
        raise CryptoError(f"{directory}: cannot create key directory: {exc.strerror}") from exc
    return directory


def write_file_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename.

    The temporary file is created with ``mode`` from the start (O_EXCL), so a
    secret is never briefly world-readable, and readers see either the old or
    the new content, never a mix.

    Raises:
        CryptoError: the file cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            # umask may have masked bits off; set exactly what was asked.
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CryptoError(f"{path}: cannot write: {exc.strerror}") from exc


def write_secret(path: Path, data: bytes) -> None:
    """Atomically write a private key or other secret with mode 0600 in a 0700 directory."""
    ensure_private_dir(path.parent)
    write_file_atomic(path, data, SECRET_FILE_MODE)


def write_public(path: Path, data: bytes) -> None:
    """Atomically write a public file (certificate, public key) with mode 0644."""
    write_file_atomic(path, data, PUBLIC_FILE_MODE)


def read_secret(path: Path, what: str) -> bytes:
    """Read a secret file, refusing it when missing or readable by group/others.

    Like OpenSSH, a private key whose permissions are too open is refused
    outright rather than used with a warning: fix it with ``chmod 600``.

    Args:
        path: the file.
        what: a human name for the error message (``identity key``).

    Raises:
        CryptoError: missing, not a regular file, too open, or unreadable.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CryptoError(f"{path}: {what} is missing (run `dtim init`?)") from None
    except OSError as exc:
        raise CryptoError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise CryptoError(f"{path}: {what} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise CryptoError(
            f"{path}: permissions {mode:04o} for the {what} are too open; "
            f"it must not be accessible by group or others (chmod 600 {path})"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CryptoError(f"{path}: cannot read {what}: {exc.strerror}") from exc


def read_public(path: Path, what: str) -> bytes:
    """Read a public file (certificate, public key).

    Raises:
        CryptoError: missing or unreadable.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CryptoError(f"{path}: {what} is missing (run `dtim init`?)") from None
    except OSError as exc:
        raise CryptoError(f"{path}: cannot read {what}: {exc.strerror}") from exc


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        # Some filesystems refuse fsync on directories; the data itself is synced.
        return
    finally:
        os.close(fd)
