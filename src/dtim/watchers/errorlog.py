"""Error logs (nginx and Apache): access denied, ModSecurity denials, limit_req, auth failures,
missing-file probes, malformed requests and shellshock traces."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dtim.errors import ParseError
from dtim.model import Sighting
from dtim.watchers.base import LineParser, Observation, QuietScreen, Screened, WatcherContext
from dtim.watchers.report import Reporter
from dtim.watchers.rules import Rule, configure
from dtim.watchers.syslog import split_syslog
from dtim.watchers.timestamps import TimeReader
from dtim.watchers.webprobes import RequestClassifier
from dtim.watchers.windows import Tracker

RULES = (
    Rule(
        "http-access-denied",
        "requests refused by the server's access rules",
        5,
        600,
        55,
        ("access-denied", "web"),
    ),
    Rule(
        "http-modsecurity",
        "ModSecurity denied requests",
        3,
        600,
        75,
        ("exploit-attempt", "waf", "web"),
    ),
    Rule(
        "http-rate-limited",
        "requests rejected by limit_req / limit_conn",
        5,
        600,
        55,
        ("flood", "web"),
    ),
    Rule(
        "http-auth-failure",
        "failed HTTP authentication (unknown user, wrong password)",
        10,
        600,
        70,
        ("brute-force", "web"),
    ),
    Rule(
        "http-error-probe",
        "missing sensitive files or admin panels, malformed requests, shellshock",
        3,
        600,
        65,
        ("exploit-attempt", "web"),
    ),
)
APACHE_RULES = tuple(rule for rule in RULES if rule.name != "http-rate-limited")
"""Apache has no limit_req: its error log never reports rate limiting."""
NGINX_PATTERNS = (
    "access-denied",
    "limit-req",
    "auth-failure",
    "modsecurity",
    "file-not-found",
    "other",
)
APACHE_PATTERNS = (
    "access-denied",
    "auth-failure",
    "modsecurity",
    "file-not-found",
    "invalid-request",
    "shellshock",
    "other",
)
_PATTERN_RULE = {
    "access-denied": "http-access-denied",
    "modsecurity": "http-modsecurity",
    "limit-req": "http-rate-limited",
    "auth-failure": "http-auth-failure",
    "invalid-request": "http-error-probe",
    "shellshock": "http-error-probe",
}
_NGINX = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$", re.S)
_NGINX_TAIL = re.compile(r'client: ([^,\s]+)(?:, server: ([^,]*))?(?:, request: "([^"]*)")?')
_NGINX_USER = re.compile(r'user "(.*?)"(?: was not found in|: password mismatch)')
_APACHE = re.compile(
    r"^\[(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4})\] \[([^\]]*)\](?: \[pid [^\]]*\])?"
    r"(?: \[client ((?:\[[^\]]+\])?[^\]\s]*)\])?(?: \[client [^\]]*\])? ?(.*)$",
    re.S,
)
_APACHE_SYSLOG = re.compile(
    r"^\[([^\]]*)\](?: \[pid [^\]]*\])?(?: \[client ((?:\[[^\]]+\])?[^\]\s]*)\])?"
    r"(?: \[client [^\]]*\])? ?(.*)$",
    re.S,
)
_APACHE_USER = re.compile(
    r"user [`']?([^\s:`']*)'?(?: in realm| not found|: authentication failure|: password mismatch"
    r"|: authorization failure| to access)"
)
_APACHE_PATH = re.compile(
    r"(?:File does not exist|script not found or unable to stat): ([^\s,]+)"
    r"|script '([^']+)' not found"
)
_MODSEC_TAGS = (
    ("sqli", "sqli"),
    ("sql injection", "sqli"),
    ("xss", "xss"),
    ("scanner", "scanner"),
    ("rce", "rce"),
    ("lfi", "path-traversal"),
)


@dataclass(slots=True)
class ServerError(Observation):
    """One classified error-log message about a client."""

    ip: str
    user: str
    target: str
    server: str
    message: str


def _client(raw: str) -> str:
    if raw.startswith("["):
        return raw[1 : raw.find("]")] if "]" in raw else raw[1:]
    if raw.count(":") == 1:
        return raw.split(":", 1)[0]
    return raw


def classify_nginx(message: str) -> str:
    """The pattern of an nginx error message."""
    if "access forbidden by rule" in message:
        return "access-denied"
    if "limiting requests" in message or "limiting connections" in message:
        return "limit-req"
    if "ModSecurity: Access denied" in message:
        return "modsecurity"
    if "was not found in" in message or "password mismatch" in message:
        return "auth-failure"
    if "(2: No such file or directory)" in message or "is not found" in message:
        return "file-not-found"
    return "other"


def classify_apache(message: str) -> str:
    """The pattern of an Apache error message."""
    if "ModSecurity" in message and "Access denied" in message:
        return "modsecurity"
    if "client denied by server configuration" in message:
        return "access-denied"
    if (
        "File does not exist" in message
        or "not found or unable to stat" in message
        or "Primary script unknown" in message
    ):
        return "file-not-found"
    if (
        "authentication failure" in message
        or "password mismatch" in message
        or (" not found" in message and "user " in message)
        or "wrong authentication scheme" in message
        or "authorization failure" in message
        or ("Authorization of user" in message and "failed" in message)
        or "realm mismatch" in message
        or "unknown algorithm" in message
        or "invalid qop" in message
        or ("invalid nonce" in message and "hash is not" not in message)
    ):
        return "auth-failure"
    if (
        "Invalid URI in request" in message
        or "Invalid method in request" in message
        or "URI too long" in message
        or "erroneous characters after protocol" in message
    ):
        return "invalid-request"
    if "function definition" in message:
        return "shellshock"
    return "other"


class NginxErrorParser:
    """Reads nginx error.log lines."""

    source = "nginx_error"

    def __init__(self, reader: TimeReader) -> None:
        self.reader = reader

    def parse(self, line: str) -> Observation | None:
        """One error-log line; messages without a client are None.

        Raises:
            ParseError: not an nginx error-log line.
        """
        match = _NGINX.match(line)
        if match is None:
            raise ParseError(self.source, "not an nginx error-log line")
        try:
            when = self.reader.slashed(match.group(1))
        except ValueError:
            raise ParseError(self.source, "bad timestamp") from None
        body = match.group(3)
        cut = body.rfind(", client: ")
        if cut < 0:
            return None
        message = body[:cut]
        tail = _NGINX_TAIL.match(body, cut + 2)
        if tail is None:
            return None
        request = tail.group(3) or ""
        target = request.split(" ")[1] if request.count(" ") >= 1 else request
        user_match = _NGINX_USER.search(message)
        return ServerError(
            classify_nginx(message),
            when,
            line,
            tail.group(1),
            user_match.group(1) if user_match else "",
            target,
            (tail.group(2) or "").strip(),
            message,
        )


class ApacheErrorParser:
    """Reads Apache error_log lines (2.2 and 2.4 formats, or through syslog)."""

    source = "apache_error"

    def __init__(self, reader: TimeReader) -> None:
        self.reader = reader

    def parse(self, line: str) -> Observation | None:
        """One error-log line; messages without a client are None.

        Raises:
            ParseError: not an Apache error-log line.
        """
        match = _APACHE.match(line)
        try:
            if match is not None:
                when, client, message = (
                    self.reader.ctime(match.group(1)),
                    match.group(3),
                    match.group(4),
                )
            else:
                parts = split_syslog(line, self.reader)
                inner = _APACHE_SYSLOG.match(parts.message) if parts is not None else None
                if parts is None or inner is None:
                    raise ParseError(self.source, "not an Apache error-log line")
                when, client, message = parts.time, inner.group(2), inner.group(3)
        except (ValueError, KeyError):
            raise ParseError(self.source, "bad timestamp") from None
        if not client:
            return None
        pattern = classify_apache(message)
        user_match = _APACHE_USER.search(message) if pattern == "auth-failure" else None
        path_match = _APACHE_PATH.search(message) if pattern == "file-not-found" else None
        target = (path_match.group(1) or path_match.group(2)) if path_match else ""
        return ServerError(
            pattern,
            when,
            line,
            _client(client),
            user_match.group(1) if user_match else "",
            target,
            "",
            message,
        )


class ErrorLogWatcher:
    """Detector shared by ``nginx_error`` and ``apache_error``."""

    def __init__(
        self,
        name: str,
        context: WatcherContext,
        parser: Callable[[TimeReader], LineParser],
        defaults: tuple[Rule, ...] = RULES,
        screen: Callable[[TimeReader], QuietScreen] | None = None,
    ) -> None:
        self.name = name
        rules, _ = configure(name, defaults, context.settings, {})
        reader = TimeReader(context.clock, context.timezone)
        self.parser = parser(reader)
        self._screen = screen(reader) if screen is not None else None
        self.report = Reporter(name, context)
        self.classifier = RequestClassifier()
        self.trackers = {
            rule.name: Tracker(rule, max_keys=context.max_tracked) for rule in rules.values()
        }

    def parser_for(self, path: str) -> LineParser:
        """The one shared parser."""
        return self.parser

    def screen(self, lines: Sequence[str]) -> Screened:
        """The batch's quiet lines (see :mod:`dtim.watchers.errorscreen`)."""
        if self._screen is None:
            return Screened(list(range(len(lines))), {})
        return self._screen.screen(lines)

    def detect(self, observation: Observation) -> Sequence[Sighting]:
        """Count the message toward its rule."""
        if not isinstance(observation, ServerError):
            return ()
        tags: list[str] = []
        rule = _PATTERN_RULE.get(observation.pattern)
        if observation.pattern == "file-not-found":
            verdict = self.classifier.url(observation.target) if observation.target else ()
            if not verdict:
                return ()
            rule, tags = "http-error-probe", [tag for _, tag in verdict]
        elif observation.pattern == "modsecurity":
            lowered = observation.message.lower()
            tags = [tag for needle, tag in _MODSEC_TAGS if needle in lowered]
        elif observation.pattern == "shellshock":
            tags = ["shellshock"]
        if rule is None or rule not in self.trackers:
            return ()
        firing = self.trackers[rule].hit(observation.ip, observation.time, observation.line)
        if firing is None:
            return ()
        users: list[str] = []
        paths: list[str] = []
        for line in firing.lines:
            try:
                earlier = self.parser.parse(line)
            except ParseError:
                continue
            if isinstance(earlier, ServerError):
                users.append(earlier.user)
                paths.append(earlier.target.split("?", 1)[0])
        family = "ipv6" if ":" in observation.ip else "ipv4"
        return (
            self.report.from_firing(
                firing,
                observation.ip,
                family,
                hosts=[observation.server],
                users=users,
                paths=paths,
                tags=tags,
            ),
        )

    def flush(self) -> Sequence[Sighting]:
        """Nothing is pending at end of input."""
        return ()
