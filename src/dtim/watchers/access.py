"""Access logs (nginx and Apache): exploit probes, SQLi, XSS, RCE payloads, scanner agents,
404 floods, 401/403 brute force on login paths, and login-form brute force answered 200."""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from dtim.errors import ParseError
from dtim.model import Sighting
from dtim.watchers.accessformat import (
    COMBINED_ESCAPED,
    COMBINED_FAST,
    COMBINED_VHOST,
    compile_format,
)
from dtim.watchers.accessscreen import AccessScreen
from dtim.watchers.base import LineParser, Observation, Screened, WatcherContext
from dtim.watchers.report import Reporter
from dtim.watchers.rules import Rule, configure, option_list, option_str
from dtim.watchers.timestamps import TimeReader
from dtim.watchers.webprobes import RequestClassifier, Verdict
from dtim.watchers.windows import Firing, Tracker

RULES = (
    Rule(
        "http-exploit-probe",
        "requests for sensitive files, traversal, or absent admin panels",
        3,
        600,
        70,
        ("exploit-attempt", "web"),
    ),
    Rule(
        "http-sqli", "SQL injection in the request", 3, 600, 75, ("exploit-attempt", "sqli", "web")
    ),
    Rule(
        "http-xss",
        "cross-site scripting in the request",
        3,
        600,
        70,
        ("exploit-attempt", "xss", "web"),
    ),
    Rule(
        "http-rce-payload",
        "log4shell, shellshock or command injection payload: fires at once",
        1,
        0,
        85,
        ("exploit-attempt", "web"),
    ),
    Rule(
        "http-scanner-ua",
        "a known vulnerability-scanner user agent: fires at once",
        1,
        0,
        75,
        ("scanner", "web"),
    ),
    Rule("http-404-flood", "many requests answered 404", 20, 300, 60, ("scanner", "web")),
    Rule(
        "http-auth-bruteforce",
        "many 401/403 answers on login paths",
        10,
        600,
        70,
        ("brute-force", "web"),
    ),
    Rule(
        "http-login-form-bruteforce",
        "many login-form POSTs answered 200 (failed logins that do not redirect)",
        10,
        600,
        65,
        ("brute-force", "web"),
    ),
)
PATTERNS = ("combined", "common", "custom")
OPTIONS = {
    "format": 'Log format: "combined" (default; also reads common and vhost_combined) '
    "or the server's own format string.",
    "login_paths": "Extra login paths (suffixes), added to the built-in list.",
    "scanner_agents": "Extra scanner user-agent substrings, added to the built-in list.",
}
LOGIN_SUFFIXES = (
    "/wp-login.php",
    "/xmlrpc.php",
    "/login",
    "/login/",
    "/login.php",
    "/signin",
    "/sign-in",
    "/user/login",
    "/users/sign_in",
    "/admin/login",
    "/account/login",
    "/auth/login",
    "/api/login",
    "/api/auth",
    "/session",
    "/sessions",
    "/j_security_check",
    "/logincheck",
    "/administrator/index.php",
    "/oauth/token",
    "/owa/auth.owa",
    "/index.php/login",
    "/admin",
    "/admin/",
    "/user",
    "/auth",
    "/authenticate",
)
_KIND_RULE = {
    "probe": "http-exploit-probe",
    "probe-4xx": "http-exploit-probe",
    "sqli": "http-sqli",
    "xss": "http-xss",
    "rce": "http-rce-payload",
}


@dataclass(slots=True)
class AccessRecord(Observation):
    """One request from an access log."""

    ip: str
    user: str
    method: str
    url: str
    status: int
    agent: str
    referer: str
    vhost: str


def compact_key(address: str) -> str | int:
    """An IPv4 address as a 32-bit integer (half the memory of its text), anything else as is."""
    try:
        return (
            int.from_bytes(socket.inet_aton(address), "big") if address.count(".") == 3 else address
        )
    except OSError:
        return address


class AccessParser:
    """Reads combined/common/vhost_combined lines, or a configured format."""

    def __init__(
        self, source: str, reader: TimeReader, custom: re.Pattern[str] | None = None
    ) -> None:
        self.source = source
        self.reader = reader
        self.custom = custom

    def parse(self, line: str) -> Observation | None:
        """One access-log line.

        Raises:
            ParseError: the line does not match the format, or its time or status is bad.
        """
        if self.custom is not None:
            return self._custom(line)
        match = None
        if '\\"' not in line:
            match = COMBINED_FAST.match(line)
            if match is not None:
                vhost = None
                ip, user, stamp, method, url, request, status, referer, agent = match.groups()
            else:
                match = COMBINED_VHOST.match(line)
                if match is not None:
                    vhost, ip, user, stamp, method, url, request, status, referer, agent = (
                        match.groups()
                    )
        if match is not None:
            if method is None:
                method, _, rest = request.partition(" ")
                url = rest.rpartition(" ")[0] if rest.count(" ") else rest
        else:
            match = COMBINED_ESCAPED.match(line)
            if match is None:
                raise ParseError(self.source, "not a combined/common access-log line")
            vhost, ip, user, stamp, request, status, referer, agent = match.groups()
            method, _, rest = request.partition(" ")
            url = rest.rpartition(" ")[0] if rest.count(" ") else rest
        try:
            when = self.reader.clf(stamp)
        except (ValueError, KeyError):
            raise ParseError(self.source, f"bad time [{stamp}]") from None
        return AccessRecord(
            "combined" if agent is not None else "common",
            when,
            line,
            ip,
            user,
            method,
            url,
            int(status),
            agent or "",
            referer or "",
            vhost or "",
        )

    def _custom(self, line: str) -> Observation:
        assert self.custom is not None  # nosec B101  # only called when a custom format is set
        match = self.custom.match(line)
        if match is None:
            raise ParseError(self.source, "line does not match the configured log format")
        fields = match.groupdict()
        stamp = fields.get("time") or ""
        try:
            when = self.reader.clf(stamp) if "/" in stamp else self.reader.iso(stamp)
        except (ValueError, KeyError):
            raise ParseError(self.source, f"bad time {stamp!r}") from None
        request = fields.get("request") or ""
        method, _, rest = request.partition(" ")
        url = fields.get("url") or rest.rpartition(" ")[0] or rest
        return AccessRecord(
            "custom",
            when,
            line,
            fields.get("ip") or "",
            fields.get("user") or "-",
            fields.get("method") or method,
            url,
            int(fields.get("status") or 0),
            fields.get("agent") or "",
            fields.get("referer") or "",
            fields.get("vhost") or "",
        )


class AccessWatcher:
    """Detector shared by ``nginx_access`` and ``apache_access``."""

    def __init__(self, name: str, context: WatcherContext) -> None:
        self.name = name
        rules, options = configure(name, RULES, context.settings, OPTIONS)
        fmt = option_str(options, "format", "combined", name)
        custom = (
            None
            if fmt in ("combined", "common", "vhost_combined")
            else compile_format(fmt, f"watchers.{name}.format")
        )
        self.parser = AccessParser(name, TimeReader(context.clock, context.timezone), custom)
        self.login = tuple(
            p.lower() for p in (*LOGIN_SUFFIXES, *option_list(options, "login_paths", (), name))
        )
        self.classifier = RequestClassifier(option_list(options, "scanner_agents", (), name))
        self.report = Reporter(name, context)
        self.trackers = {
            rule.name: Tracker(rule, max_keys=context.max_tracked) for rule in rules.values()
        }
        self._flood = self.trackers["http-404-flood"]
        self._auth = self.trackers["http-auth-bruteforce"]
        self._form = self.trackers["http-login-form-bruteforce"]
        self._scanner = self.trackers["http-scanner-ua"]
        self._screen = AccessScreen(self.parser.reader, self.classifier)

    def parser_for(self, path: str) -> LineParser:
        """The one shared parser."""
        return self.parser

    def _is_login(self, url: str) -> bool:
        path = url.split("?", 1)[0].lower()
        return path.endswith(self.login)

    def screen(self, lines: Sequence[str]) -> Screened:
        """The batch's quiet lines (see :mod:`dtim.watchers.accessscreen`); a configured
        format has no screen."""
        if self.parser.custom is not None:
            return Screened(list(range(len(lines))), {})
        return self._screen.screen(lines)

    def detect(self, observation: Observation) -> Sequence[Sighting]:
        """Classify the request and count it toward every rule it matches."""
        if not isinstance(observation, AccessRecord):
            return ()
        record = observation
        verdict: Verdict = self.classifier.url(record.url) if record.url else ()
        scanner, header = self.classifier.agent(record.agent) if record.agent else ("", ())
        if record.referer and "${" in record.referer:
            header = header + self.classifier.agent(record.referer)[1]
        status = record.status
        found: list[Sighting] = []
        if verdict or header:
            hit: dict[str, list[str]] = {}
            for kind, tag in (*verdict, *header):
                if kind == "probe-4xx" and not 400 <= status < 500:
                    continue
                hit.setdefault(_KIND_RULE[kind], []).append(tag)
            for rule, tags in hit.items():
                self._count(self.trackers[rule], record, found, tags)
        if scanner:
            self._count(self._scanner, record, found, [], {"scanner": scanner})
        if status == 404:
            self._count(self._flood, record, found, [])
        elif status in (401, 403):
            if status == 401 or self._is_login(record.url):
                self._count(self._auth, record, found, [])
        elif status == 200 and record.method == "POST" and self._is_login(record.url):
            self._count(self._form, record, found, [])
        return found

    def _count(
        self,
        tracker: Tracker,
        record: AccessRecord,
        found: list[Sighting],
        tags: list[str],
        details: dict[str, str] | None = None,
    ) -> None:
        firing = tracker.hit(compact_key(record.ip), record.time, record.line)
        if firing is not None:
            found.append(self._sighting(firing, record, tags, details))

    def _sighting(
        self, firing: Firing, record: AccessRecord, tags: list[str], details: dict[str, str] | None
    ) -> Sighting:
        hosts: list[str] = []
        users: list[str] = []
        paths: list[str] = []
        for line in firing.lines:
            try:
                earlier = self.parser.parse(line)
            except ParseError:
                continue
            if isinstance(earlier, AccessRecord):
                hosts.append(earlier.vhost)
                users.append(earlier.user)
                paths.append(earlier.url.split("?", 1)[0])
        family = "ipv6" if ":" in record.ip else "ipv4"
        return self.report.from_firing(
            firing,
            record.ip,
            family,
            hosts=hosts,
            users=users,
            paths=paths,
            tags=tags,
            details={"status": record.status, **(details or {})},
        )

    def flush(self) -> Sequence[Sighting]:
        """Nothing is pending at end of input."""
        return ()
