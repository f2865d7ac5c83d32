"""A small filesystem for the node's database: a tmpfs as root, else a file-size limit.

As root (where mounting is allowed) the database lives on its own tmpfs, so
the disk really fills (``ENOSPC``) and can be remounted read-only. Elsewhere
the node runs under ``RLIMIT_FSIZE`` (``SIGXFSZ`` ignored, so writes fail with
``EFBIG`` instead of killing it), and "read-only" is file permissions.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def can_mount() -> bool:
    """Root, with ``mount`` available (containers may still refuse; see :meth:`SmallDisk.make`)."""
    return os.geteuid() == 0 and shutil.which("mount") is not None


@dataclass
class SmallDisk:
    """A directory whose files cannot grow past ``size`` bytes."""

    path: Path
    size: int
    mounted: bool

    @classmethod
    def make(cls, path: Path, size: int) -> SmallDisk:
        """A tmpfs of ``size`` bytes at ``path`` when possible, else a plain directory."""
        path.mkdir(parents=True, exist_ok=True)
        if can_mount():
            done = subprocess.run(  # the system's mount
                ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                return cls(path, size, mounted=True)
        return cls(path, size, mounted=False)

    def preexec(self) -> Callable[[], None] | None:
        """What the node process must run before exec (the size limit without a tmpfs)."""
        if self.mounted:
            return None
        limit = self.size

        def limit_file_size() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return limit_file_size

    def grow(self, size: int) -> None:
        """Make room: a bigger tmpfs, or a bigger limit for the next process."""
        self.size = size
        if self.mounted:
            self._remount(f"remount,size={size}")

    def read_only(self, on: bool) -> None:
        """Make the directory's files read-only (or writable again)."""
        if self.mounted:
            self._remount("remount,ro" if on else "remount,rw")
            return
        mode = stat.S_IRUSR | stat.S_IXUSR
        for item in self.path.iterdir():
            item.chmod(stat.S_IRUSR if on else stat.S_IRUSR | stat.S_IWUSR)
        self.path.chmod(mode if on else mode | stat.S_IWUSR)

    def close(self) -> None:
        """Unmount (files are gone) or restore permissions."""
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)  # the system's umount
        else:
            self.read_only(False)

    def _remount(self, options: str) -> None:
        subprocess.run(  # the system's mount
            ["mount", "-o", options, str(self.path)], capture_output=True, check=True
        )
