"""Quiet-line screen for combined access logs (nginx and Apache).

Most requests are benign: a GET of a known page by a browser, answered 200.
Such a line is well-formed, counted by no rule, and parsing and detecting it
would change nothing, so the runner skips both. A batch is split on ``"``
into its fields, and each distinct request, status, referer, user agent and
prefix (the line less its client address) is judged once; a value is quiet
when it reads exactly as :data:`~dtim.watchers.accessformat.COMBINED_FAST`
(or ``COMBINED_VHOST``) would read it and no rule would count it. Lines of
another shape (common format, escaped quotes, NUL bytes) get the same verdict
one at a time; anything unsure is left to the parser.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter

from dtim.watchers.accessformat import COMBINED_FAST
from dtim.watchers.base import Screened
from dtim.watchers.screen import Verdicts, around_newlines, holds_newline, unusual
from dtim.watchers.timestamps import CLF_WIDTH, TimeReader
from dtim.watchers.webprobes import RequestClassifier

COUNTED_STATUS = frozenset({"401", "403", "404"})
# The pieces of a combined line between its quotes, read as COMBINED_FAST reads them.
_PREFIX = re.compile(r"\S+ (\S+) \[([^\]]+)\] ")
_VHOST_PREFIX = re.compile(r"(\S+) \S+ (\S+) \[([^\]]+)\] ")
_REQUEST = re.compile(r"([A-Z]{3,8}) (\S+) HTTP/[0-9.]+")
_STATUS = re.compile(r" ([0-9]{3}) \S+ ")  # ASCII digits: int() would read others too
_STATUS_COLUMN = re.compile(r"(?:\n [0-9]{3} \S+ )*\n")
_COUNTED = re.compile(r"\n 40[134] ")
# A column of heads (each after a newline) where every prefix is two or three plain
# tokens and a bracketed time of CLF's fixed width: both prefix forms, read without "["
# (so each head's one "[" opens its time) or an ASCII control character in any token.
_FIELD = r"[^\s\[\x00-\x1f\x7f]+"
_PLAIN_HEADS = re.compile(
    rf"(?:\n{_FIELD} {_FIELD} {_FIELD} (?:{_FIELD} )?\[[^\]\n]{{{CLF_WIDTH}}}\] )*"
)
# A plain head ends with its bracketed time and a space.
_STAMP_TEXT = itemgetter(slice(-CLF_WIDTH - 2, -2))
_QUOTES = 6  # around request, referer and agent


def _aligned(pieces: list[str], count: int) -> bool:
    """Whether ``pieces`` (``count`` lines split on quotes) hold six quotes per line, the
    last one ending the line: then every piece after the sixth of a line starts with the
    newline (and there are only ``count - 1`` of them)."""
    return (
        len(pieces) == _QUOTES * count + 1
        and not pieces[-1]
        and all(map(str.startswith, pieces[_QUOTES:-1:_QUOTES], repeat("\n")))
    )


def _shaped(line: str) -> bool:
    return line.count('"') == _QUOTES and line.endswith('"')


def _one_token(head: str) -> bool:
    first = head.lstrip("\n").partition(" ")[0]
    return bool(first) and first.isprintable() and "[" not in first


class AccessScreen:
    """Finds the quiet lines of a batch of combined-format lines.

    Args:
        reader: the parser's time reader (a timestamp is quiet once it reads).
        classifier: the detector's request classifier.
    """

    def __init__(self, reader: TimeReader, classifier: RequestClassifier) -> None:
        self.reader = reader
        self.classifier = classifier
        self._prefixes = Verdicts(self._prefix)
        self._stamps = Verdicts(self._stamp)
        self._requests = Verdicts(self._request)
        self._statuses = Verdicts(self._status)
        self._referers = Verdicts(lambda referer: "${" not in referer)
        self._agents = Verdicts(self._agent)

    def screen(self, lines: Sequence[str]) -> Screened:
        """Sort a batch into quiet lines and lines to parse."""
        if holds_newline(lines):
            return around_newlines(self.screen, lines)
        text = "\n".join(lines)
        odd = unusual(lines, text) if "\x00" in text or "\\" in text else set()
        rows: Sequence[int] = range(len(lines))
        pieces = text.split('"')
        if odd or not _aligned(pieces, len(lines)):
            rows = [k for k, line in enumerate(lines) if k not in odd and _shaped(line)]
            pieces = "\n".join([lines[k] for k in rows]).split('"')
        noisy = (
            {rows[k] for k in self._noisy(pieces, len(rows), dollar="${" in text)}
            if rows
            else set()
        )
        quiet: Counter[str] = Counter({"combined": len(rows) - len(noisy)})
        if len(rows) < len(lines):
            for k in sorted(set(range(len(lines))).difference(rows)):
                pattern = "" if k in odd else self.line(lines[k])
                if pattern:
                    quiet[pattern] += 1
                else:
                    noisy.add(k)
        return Screened(sorted(noisy), {p: n for p, n in quiet.items() if n})

    def _noisy(self, pieces: list[str], count: int, *, dollar: bool) -> set[int]:
        """Rows (of ``count`` aligned lines, split on quotes) that are not certainly quiet."""
        heads = pieces[0 : _QUOTES * count : _QUOTES]
        statuses = pieces[2::_QUOTES]
        gaps = pieces[4::_QUOTES]
        joined = "\n" + "".join(heads)
        plain = _PLAIN_HEADS.fullmatch(joined) is not None
        noisy = {
            *self._prefix_rows(heads, plain=plain),
            *self._requests.noisy(pieces[1::_QUOTES]),
            *self._status_rows(statuses),
            *self._agents.noisy(pieces[5::_QUOTES]),
        }
        if dollar:  # a "${" anywhere in the batch: find the referers holding one
            noisy.update(self._referers.noisy(pieces[3::_QUOTES]))
        if gaps.count(" ") != count:
            noisy.update(k for k, gap in enumerate(gaps) if gap != " ")
        # The first token (client address, or vhost) must be one printable token without
        # "[" (COMBINED_VHOST refuses it in a vhost). The head's only "[" opens its time.
        # Plain heads have such tokens unless a non-ASCII character is not printable.
        if plain:
            look = not joined.isascii() and not joined.replace("\n", " ").isprintable()
        else:
            look = (
                "\n " in joined
                or joined.count("[") != count
                or not joined.replace("\n", " ").isprintable()
            )
        if look:
            noisy.update(k for k, head in enumerate(heads) if not _one_token(head))
        return noisy

    def _status_rows(self, statuses: list[str]) -> list[int]:
        # Response sizes make most status fields distinct: one pass checks their form.
        column = "\n" + "\n".join(statuses) + "\n"
        if _STATUS_COLUMN.fullmatch(column) is None:
            return self._statuses.noisy(statuses)
        # Counted statuses are few (a 404 here and there): their rows are found by counting
        # the newlines before each, which stays in C but for one step per counted status.
        rows: list[int] = []
        row = 0
        start = 0
        for match in _COUNTED.finditer(column):
            row += column.count("\n", start, match.start())
            start = match.start()
            rows.append(row)
        return rows

    def _prefix_rows(self, heads: list[str], *, plain: bool) -> list[int]:
        # Addresses make most prefixes distinct (vhost lines carry the client's in theirs):
        # when every head has the plain shape, only the distinct times are judged.
        if plain:
            return self._stamps.noisy(list(map(_STAMP_TEXT, heads)))
        return self._prefixes.noisy([head.partition(" ")[2] for head in heads])

    def _stamp(self, stamp: str) -> bool:
        try:
            self.reader.clf(stamp)
        except (ValueError, KeyError):
            return False
        return True

    def _prefix(self, prefix: str) -> bool:
        """Ident, user and time (or address, ident, user and time after a vhost)."""
        match = _PREFIX.fullmatch(prefix)
        if match is not None:
            stamp = match.group(2)
        else:
            match = _VHOST_PREFIX.fullmatch(prefix)
            # A user starting with "[" would let COMBINED_FAST read the vhost as the address.
            if match is None or match.group(2).startswith("["):
                return False
            stamp = match.group(3)
        return self._stamp(stamp)

    def _request(self, request: str) -> bool:
        match = _REQUEST.fullmatch(request)
        # POST is left to the parser: answered 200 on a login path, a rule counts it.
        return (
            match is not None
            and match.group(1) != "POST"
            and not self.classifier.url(match.group(2))
        )

    def _status(self, status: str) -> bool:
        match = _STATUS.fullmatch(status)
        return match is not None and match.group(1) not in COUNTED_STATUS

    def _agent(self, agent: str) -> bool:
        scanner, header = self.classifier.agent(agent)
        return not scanner and not header

    def line(self, line: str) -> str:
        """One line's pattern when it is certainly quiet, else "" (lines of another shape)."""
        match = COMBINED_FAST.match(line)
        if match is None:
            return ""
        _ip, _user, stamp, method, url, _request, status, referer, agent = match.groups()
        if (
            method is None
            or status in COUNTED_STATUS
            or not status.isascii()
            or (method == "POST" and status == "200")
        ):
            return ""
        if stamp not in self.reader.cache or self.classifier.url(url):
            return ""
        if agent is None:
            return "common"
        scanner, header = self.classifier.agent(agent)
        if scanner or header or "${" in referer:
            return ""
        return "combined"
