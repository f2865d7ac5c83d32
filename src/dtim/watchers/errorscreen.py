"""Quiet-line screens for nginx and Apache error logs.

Most error-log lines are about something no rule counts (an upstream timeout,
a missing directory index). Such a line only has to be well-formed and carry
a client for its pattern to be counted; parsing and detecting it changes
nothing. What varies from line to line (the connection number, the fraction
of a second, the client address or the whole client part) is cut out of the
batch's text by regular-expression passes over all of it, leaving a key per
line (control characters mark the cuts: the screens leave lines already
holding one to the parser), and each distinct key is judged once with the
parser's own regular expressions and classifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from dtim.watchers.base import Screened
from dtim.watchers.errorlog import classify_apache, classify_nginx
from dtim.watchers.screen import Verdicts, around_newlines, holds_newline
from dtim.watchers.timestamps import TimeReader

# A key's time is its first 19 characters (each \d reads one), judged apart from the rest:
# the rest repeats across seconds, so the message is read once, not once a second.
_NGINX_TIME = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d")
_NGINX_TIME_WIDTH = 19
# Markers replace what varies; a literal replacement keeps the substitution in C (a
# template with groups is expanded in Python, match by match). A key is judged only
# when each marker appears once, where the parser's regular expression reads that field.
_CONNECTION = "\x00"  # _NGINX's optional "(?:\*\d+ )?"
_NGINX_CLIENT = ", client: "
_TAIL = "\x01"  # the line's client part, from its ", client: " to its end
# A client the tail reads ("client: ([^,\s]+)") starts with neither a comma nor a space: a
# line whose client part does not is left uncut, and so to the parser.
_NGINX_TAIL = re.compile(r", client: (?=[^,\s])[^\n]*")
_NGINX_CONNECTION = re.compile(r"\*(?<=\d: \*)\d+ ")  # "*" first: a fast search
_NGINX_REST = re.compile(r" \[\w+\] \d+#\d+: \x00([^\x00\x01]*)\x01")
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


class NginxErrorScreen:
    """Finds the quiet lines (pattern ``other``) of a batch of nginx error-log lines."""

    def __init__(self, reader: TimeReader) -> None:
        self.reader = reader
        self._times = Verdicts(self._time)
        self._rests = Verdicts(self._rest)
        self._keys = Verdicts(self._key)

    def _key(self, key: str) -> bool:
        width = _NGINX_TIME_WIDTH
        return self._rests.quiet(key[width:]) and self._times.quiet(key[:width])

    def _rest(self, rest: str) -> bool:
        match = _NGINX_REST.fullmatch(rest)
        return match is not None and classify_nginx(match.group(1)) == "other"

    def _time(self, text: str) -> bool:
        if _NGINX_TIME.fullmatch(text) is None:
            return False
        try:
            self.reader.slashed(text)
        except (ValueError, KeyError):
            return False
        return True

    def screen(self, lines: Sequence[str]) -> Screened:
        """Sort a batch into quiet lines and lines to parse.

        A key is a line with its connection number and its client part cut: the parser
        reads the message up to the line's last ", client: ", the key up to its first, so
        the cut stands only when every cut line holds exactly one. Each cut holds one
        and an uncut line none exactly when the batch holds as many ", client: " as
        cuts; otherwise each line is checked alone.
        """
        if holds_newline(lines):
            return around_newlines(self.screen, lines)
        text = "\n".join(lines)
        if _CONNECTION in text or _TAIL in text:  # a marker already there: per line
            return self._line_by_line(lines)
        heads = _NGINX_TAIL.sub(_TAIL, text)
        if heads.count(_TAIL) != text.count(_NGINX_CLIENT):
            return self._line_by_line(lines)
        return _result(len(lines), set(self._keys.noisy(_keys(heads))), "other")

    def _line_by_line(self, lines: Sequence[str]) -> Screened:
        rows = [k for k, line in enumerate(lines) if _plain(line)]
        noisy = set(range(len(lines))).difference(rows)
        if rows:
            heads = _NGINX_TAIL.sub(_TAIL, "\n".join([lines[k] for k in rows]))
            noisy.update(rows[k] for k in self._keys.noisy(_keys(heads)))
        return _result(len(lines), noisy, "other")


def _keys(heads: str) -> list[str]:
    """One key per line of ``heads`` (lines whose client parts are cut): the connection
    number cut too. Its pattern needs a digit before ": *", so it never starts at a cut."""
    return _NGINX_CONNECTION.sub(_CONNECTION, heads).split("\n")


def _plain(line: str) -> bool:
    """A line with one ", client: " and no marker of its own."""
    return line.count(_NGINX_CLIENT) == 1 and _CONNECTION not in line and _TAIL not in line


class ApacheErrorScreen(_KeyedScreen):
    """Finds the quiet lines (pattern ``other``) of a batch of Apache error-log lines."""

    def __init__(self, reader: TimeReader) -> None:
        super().__init__(_APACHE_KEY, classify_apache, reader.ctime)

    def screen(self, lines: Sequence[str]) -> Screened:
        """Sort a batch into quiet lines and lines to parse."""
        if holds_newline(lines):
            return around_newlines(self.screen, lines)
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
