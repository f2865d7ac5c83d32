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
from dtim.watchers.screen import Verdicts
from dtim.watchers.timestamps import TimeReader

_NGINX_HEAD = r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[\w+\] \d+#\d+: "
# Markers replace what varies; a literal replacement keeps the substitution in C (a
# template with groups is expanded in Python, match by match). A key is judged only
# when each marker appears once, where the parser's regular expression reads that field.
_CONNECTION = "\x00"  # _NGINX's optional "(?:\*\d+ )?"
_NGINX_CONNECTION = re.compile(r"\*(?<=\d: \*)\d+ ")  # "*" first: a fast search
_NGINX_KEY = re.compile(rf"{_NGINX_HEAD}\x00([^\x00]*)")
_NGINX_CLIENT = ", client: "
# A client the tail reads ("client: ([^,\s]+)") starts with neither a comma nor a space.
_NO_CLIENT = re.compile(r"\n[,\s]")
_FRACTION = "\x00"  # of a second, in _APACHE's time
_APACHE_FRACTION = re.compile(r"\.(?<=:\d\d\.)\d+(?= \d{4}\] )")
_CLIENT = "\x01"  # _APACHE's first, non-empty, client element
_APACHE_CLIENT = re.compile(r" \[client (?:\[[^\]]+\][^\]\s]*|[^\]\s]+)\]")
_APACHE_KEY = re.compile(
    r"\[(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d)\x00?( \d{4})\] \[[^\]]*\](?: \[pid [^\]]*\])?\x01"
    r"(?: \[client [^\]]*\])? ?([^\x00\x01]*)",
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
        if match is None:
            return False
        *stamp, message = match.groups()
        if self.classify(message) != "other":
            return False
        try:
            self.stamp("".join(stamp))
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
        if _CONNECTION in text or not _one_client_each(pieces, len(lines)):
            rows = [k for k, line in enumerate(lines) if _one_client(line)]
            pieces = "\n".join([lines[k] for k in rows]).split(_NGINX_CLIENT)
        if isinstance(rows, range):
            return _result(len(lines), self._noisy(pieces), "other")
        noisy = {rows[k] for k in self._noisy(pieces)} if rows else set()
        noisy.update(set(range(len(lines))).difference(rows))
        return _result(len(lines), noisy, "other")

    def _noisy(self, pieces: list[str]) -> set[int]:
        parts = "\n".join(pieces).split("\n")
        heads, clients = parts[0::2], parts[1::2]
        keys = _NGINX_CONNECTION.sub(_CONNECTION, "\n".join(heads)).split("\n")
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
    return line.count(_NGINX_CLIENT) == 1 and _CONNECTION not in line


class ApacheErrorScreen(_KeyedScreen):
    """Finds the quiet lines (pattern ``other``) of a batch of Apache error-log lines."""

    def __init__(self, reader: TimeReader) -> None:
        super().__init__(_APACHE_KEY, classify_apache, reader.ctime)

    def screen(self, lines: Sequence[str]) -> Screened:
        """Sort a batch into quiet lines and lines to parse."""
        text = "\n".join(lines)
        odd: set[int] = set()
        if _FRACTION in text or _CLIENT in text:  # a marker already there: left to the parser
            odd = {k for k, line in enumerate(lines) if _FRACTION in line or _CLIENT in line}
        keys = _APACHE_FRACTION.sub(_FRACTION, _APACHE_CLIENT.sub(_CLIENT, text)).split("\n")
        noisy = odd.union(self._keys.noisy(keys))
        return _result(len(lines), noisy, "other")


def _result(total: int, noisy: set[int], pattern: str) -> Screened:
    quiet = total - len(noisy)
    return Screened(sorted(noisy), {pattern: quiet} if quiet else {})
