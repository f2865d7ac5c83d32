"""ClamAV: ``FOUND`` lines of clamd/clamscan output, and hash indicators of infected files.

A FOUND line names a file; the file itself is hashed (SHA-256, SHA-1, MD5),
because for archives the signature's hash is that of an extracted member, not
of the file on disk. clamd's ``Sig(md5:size) FOUND`` form (ExtendedDetectionInfo)
gives an MD5 even when the file is gone. The directory scanner that finds and
scans new files lives in :mod:`dtim.watchers.clamscan`.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dtim.errors import ParseError
from dtim.model import Scope, Sighting
from dtim.watchers.base import InputKind, LineParser, Observation, WatcherContext, WatcherSpec
from dtim.watchers.hookspecs import hookimpl
from dtim.watchers.report import Reporter
from dtim.watchers.rules import Rule, configure, option_str
from dtim.watchers.timestamps import TimeReader
from dtim.watchers.windows import Tracker

NAME = "clamav"
RULES = (
    Rule(
        "clamav-infected",
        "ClamAV found a signature in a file: its hashes",
        1,
        0,
        90,
        ("malware",),
        cooldown=86400,
    ),
)
PATTERNS = ("found", "clean", "summary")
OPTIONS = {
    "path_root": "Directory that relative paths in FOUND lines are relative to.",
    "clamd_socket": "clamd socket: unix socket path or host:port (default /run/clamav/clamd.ctl).",
    "clamscan": "clamscan binary used when clamd is not reachable (default: clamscan on PATH).",
    "database": (
        "Signature database (a .hdb/.ndb/.cvd file or a directory of them) given to clamscan "
        "as -d (default: clamscan's own); clamd reads its DatabaseDirectory instead."
    ),
}
MAX_HASHED_BYTES = 512 * 1024 * 1024
_LOGTIME = re.compile(r"^(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) -> (.*)$", re.S)
_EXTENDED = re.compile(r"^(.*)\(([0-9a-f]{32}):\d+\)$")
_TEST_SIGNATURES = ("eicar", "clamav.test", "test-signature", "test.file")
_SUMMARY_KEYS = (
    "Known viruses",
    "Engine version",
    "Scanned ",
    "Infected files",
    "Data scanned",
    "Data read",
    "Time:",
    "Start Date",
    "End Date",
    "Total errors",
)


@dataclass(frozen=True, slots=True)
class FileHashes:
    """The three digests of one file."""

    sha256: str
    sha1: str
    md5: str
    size: int


def hash_file(path: str, limit: int = MAX_HASHED_BYTES) -> FileHashes | None:
    """SHA-256, SHA-1 and MD5 of a regular file; None when missing, unreadable or too big."""
    try:
        # Non-blocking open: a FIFO named in a FOUND line would otherwise block the watcher.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                return None
            # MD5 and SHA-1 are indicator formats here, not a security measure
            sha256 = hashlib.sha256()
            sha1 = hashlib.sha1(usedforsecurity=False)
            md5 = hashlib.md5(usedforsecurity=False)
            size = 0
            while chunk := handle.read(1 << 20):
                size += len(chunk)
                sha256.update(chunk)
                sha1.update(chunk)
                md5.update(chunk)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return None
    return FileHashes(sha256.hexdigest(), sha1.hexdigest(), md5.hexdigest(), size)


@dataclass(slots=True)
class ScanResult(Observation):
    """One scanned file and what ClamAV said about it."""

    path: str
    signature: str
    md5: str = ""


class ClamavParser:
    """Reads clamscan output and clamd log lines."""

    def __init__(self, reader: TimeReader) -> None:
        self.reader = reader

    def parse(self, line: str) -> Observation | None:
        """One line; FOUND and OK lines are observations, summaries and noise are None.

        Raises:
            ParseError: a line that is neither a scan result nor known ClamAV output.
        """
        when = self.reader.clock.now().timestamp()
        text = line
        stamped = _LOGTIME.match(line)
        if stamped is not None:
            try:
                when = self.reader.ctime(stamped.group(1))
            except (ValueError, KeyError):
                raise ParseError(NAME, "bad clamd timestamp") from None
            text = stamped.group(2)
        stripped = text.strip()
        if (
            not stripped
            or stripped.startswith(("-----", "LibClamAV", "SelfCheck", "+++"))
            or stripped.startswith(_SUMMARY_KEYS)
        ):
            return (
                Observation("summary", when, line) if stripped.startswith(_SUMMARY_KEYS) else None
            )
        if stripped.endswith(" FOUND"):
            path, sep, signature = stripped[: -len(" FOUND")].rpartition(": ")
            if not sep or not signature or " " in signature:
                raise ParseError(NAME, "FOUND line without 'path: Signature'")
            md5 = ""
            extended = _EXTENDED.match(signature)
            if extended is not None:
                signature, md5 = extended.group(1), extended.group(2)
            return ScanResult("found", when, line, path, signature, md5)
        if stripped.endswith((": OK", ": Empty file", ": Excluded", ": Symbolic link")):
            return ScanResult("clean", when, line, stripped.rpartition(": ")[0], "")
        if stamped is not None:
            return None  # other clamd log messages (reloads, self checks)
        raise ParseError(NAME, "not ClamAV output")


def signature_tags(signature: str) -> tuple[str, ...]:
    """Tags for a signature: its name (no .UNOFFICIAL suffix), and test-file for test patterns."""
    name = signature.removesuffix(".UNOFFICIAL").lower()
    tags = [name[:120]]
    if any(marker in name for marker in _TEST_SIGNATURES):
        tags.append("test-file")
    return tuple(tags)


class ClamavWatcher:
    """Hashes files named in FOUND lines and reports their hashes."""

    name = NAME

    def __init__(
        self, context: WatcherContext, hasher: Callable[[str], FileHashes | None] = hash_file
    ) -> None:
        rules, options = configure(NAME, RULES, context.settings, OPTIONS)
        self.root = option_str(options, "path_root", "", NAME)
        self.clamd_socket = option_str(options, "clamd_socket", "/run/clamav/clamd.ctl", NAME)
        self.clamscan = option_str(options, "clamscan", "clamscan", NAME)
        self.database = option_str(options, "database", "", NAME)
        self.parser = ClamavParser(TimeReader(context.clock, context.timezone))
        self.report = Reporter(NAME, context)
        self.tracker = Tracker(rules["clamav-infected"], max_keys=context.max_tracked)
        self.hasher = hasher

    def parser_for(self, path: str) -> LineParser:
        """The one shared parser."""
        return self.parser

    def detect(self, observation: Observation) -> Sequence[Sighting]:
        """Hash the infected file and report each digest."""
        if not isinstance(observation, ScanResult) or observation.pattern != "found":
            return ()
        path = observation.path
        if self.root and not os.path.isabs(path):
            path = os.path.join(self.root, path)
        hashes = self.hasher(path)
        return self.infected(
            path, observation.signature, hashes, observation.time, observation.line, observation.md5
        )

    def infected(
        self,
        path: str,
        signature: str,
        hashes: FileHashes | None,
        when: float,
        line: str,
        md5: str = "",
    ) -> list[Sighting]:
        """Sightings for one infected file (used by the FOUND-line parser and the scanner)."""
        digests = (
            [("sha256", hashes.sha256), ("sha1", hashes.sha1), ("md5", hashes.md5)]
            if hashes
            else []
        )
        if md5 and not any(kind == "md5" for kind, _ in digests):
            digests.append(("md5", md5))
        tags = signature_tags(signature)
        scope = Scope.LOCAL if "test-file" in tags else None
        found: list[Sighting] = []
        for kind, digest in digests:
            firing = self.tracker.hit(digest, when, line)
            if firing is not None:
                found.append(
                    self.report.from_firing(
                        firing,
                        digest,
                        kind,
                        paths=[path],
                        tags=tags,
                        scope=scope,
                        details={"signature": signature, "size": hashes.size if hashes else None},
                    )
                )
        return found

    def flush(self) -> Sequence[Sighting]:
        """Nothing is pending at end of input."""
        return ()


SPEC = WatcherSpec(
    NAME,
    "ClamAV: scan new files in clamav_scan_dir (clamd or clamscan), or read FOUND lines",
    InputKind.SCAN,
    RULES,
    PATTERNS,
    ClamavWatcher,
    OPTIONS,
)


@hookimpl
def dtim_register_watchers() -> Sequence[WatcherSpec]:
    """Register the ClamAV watcher."""
    return (SPEC,)
