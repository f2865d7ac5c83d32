"""Quiet-line screens for nginx and Apache error logs.

Most error-log lines are about something no rule counts (an upstream timeout,
a missing directory index). Such a line only has to be well-formed and carry
a client for its pattern to be counted; parsing and detecting it changes
nothing. What varies from line to line (the connection number, the fraction
of a second, the client address) is cut out of the batch's text in one
regular-expression pass, leaving a key per line (a NUL marks the cut: the
screens leave lines with a NUL to the parser), and each distinct key is
judged once with the parser's own regular expressions and classifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import repeat

from dtim.watchers.base import Screened
from dtim.watchers.errorlog import classify_apache, classify_nginx
from dtim.watchers.screen import Verdicts, unusual
from dtim.watchers.timestamps import TimeReader

_NGINX_HEAD = r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[\w+\] \d+#\d+: "
# The connection number, as _NGINX's optional "(?:\*\d+ )?" reads it, becomes a NUL.
_NGINX_CONNECTION = re.compile(rf"\n({_NGINX_HEAD})\*\d+ ")
_NGINX_KEY = re.compile(rf"{_NGINX_HEAD}\x00(.*)", re.S)
_NGINX_CLIENT = ", client: "
# A client the tail reads ("client: ([^,\s]+)") starts with neither a comma nor a space.
_NO_CLIENT = re.compile(r"\n[,\s]")
_APACHE_STAMP = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d"
# The fraction of a second and a non-empty client element, as _APACHE reads them, go.
_APACHE_VARYING = re.compile(
    rf"\n\[({_APACHE_STAMP})(?:\.\d+)?( \d{{4}}\] \[[^\]]*\](?: \[pid [^\]]*\])?)"
    r" \[client (?:\[[^\]]+\][^\]\s]*|[^\]\s]+)\]"
)
_APACHE_KEY = re.compile(
    rf"\[({_APACHE_STAMP} \d{{4}})\] \[[^\]]*\](?: \[pid [^\]]*\])?\x00"
    r"(?: \[client [^\]]*\])? ?(.*)",
    re.S,
)


class _KeyedScreen:
    """Judges keys: quiet when they read as a well-formed line of pattern ``other``."""

    def __init__(
        self, key: re.Pattern[str], classify: Callable[[str], str], stamp: Callable[[str], float]
    ) -> None:
        self.key = key
        self.classify = classify
        self.stamp = stamp
        self._keys = Verdicts(self._key)

    def _key(self, key: str) -> bool:
        match = self.key.fullmatch(key)
        if match is None or self.classify(match.group(2)) != "other":
            return False
        try:
            self.stamp(match.group(1))
        except (ValueError, KeyError):
            return False
        return True


class NginxErrorScreen(_KeyedScreen):
    """Finds the quiet lines (pattern ``other``) of a batch of nginx error-log lines."""

    def __init__(self, reader: TimeReader) -> None:
        super().__init__(_NGINX_KEY, classify_nginx, reader.slashed)

    def screen(self, lines: Sequence[str]) -> Screened:
        """Sort a batch into quiet lines and lines to parse."""
        text = "\n".join(lines)
        rows: Sequence[int] = range(len(lines))
        pieces = text.split(_NGINX_CLIENT)
        if "\x00" in text or not _one_client_each(pieces, len(lines)):
            rows = [k for k, line in enumerate(lines) if _one_client(line)]
            pieces = "\n".join([lines[k] for k in rows]).split(_NGINX_CLIENT)
        noisy = {rows[k] for k in self._noisy(pieces)} if rows else set()
        noisy.update(set(range(len(lines))).difference(rows))
        return _result(len(lines), noisy, "other")

    def _noisy(self, pieces: list[str]) -> set[int]:
        parts = "\n".join(pieces).split("\n")
        heads, clients = parts[0::2], parts[1::2]
        keys = _NGINX_CONNECTION.sub("\n\\1\x00", "\n" + "\n".join(heads)).split("\n")[1:]
        noisy = set(self._keys.noisy(keys))
        if _NO_CLIENT.search("\n" + "\n".join(clients) + "\n") is not None:
            noisy.update(k for k, c in enumerate(clients) if not c or c[0] == "," or c[0].isspace())
        return noisy


def _one_client_each(pieces: list[str], count: int) -> bool:
    """Whether ``pieces`` (``count`` lines split on ", client: ") hold exactly one per line
    (the parser cuts at the last one): then every piece but the first and the last holds
    one line's client and, after the only newline, the next line's head."""
    return len(pieces) == count + 1 and all(map(str.__contains__, pieces[1:-1], repeat("\n")))


def _one_client(line: str) -> bool:
    return line.count(_NGINX_CLIENT) == 1 and "\x00" not in line


class ApacheErrorScreen(_KeyedScreen):
    """Finds the quiet lines (pattern ``other``) of a batch of Apache error-log lines."""

    def __init__(self, reader: TimeReader) -> None:
        super().__init__(_APACHE_KEY, classify_apache, reader.ctime)

    def screen(self, lines: Sequence[str]) -> Screened:
        """Sort a batch into quiet lines and lines to parse."""
        text = "\n".join(lines)
        odd = unusual(lines, text) if "\x00" in text else set()
        keys = _APACHE_VARYING.sub("\n[\\1\\2\x00", "\n" + text).split("\n")[1:]
        noisy = odd.union(self._keys.noisy(keys))
        return _result(len(lines), noisy, "other")


def _result(total: int, noisy: set[int], pattern: str) -> Screened:
    quiet = total - len(noisy)
    return Screened(sorted(noisy), {pattern: quiet} if quiet else {})
