"""fail2ban: ``Ban`` and ``Found`` lines of fail2ban.log, tagged by jail."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dtim.errors import ParseError
from dtim.model import Sighting
from dtim.watchers.base import InputKind, LineParser, Observation, WatcherContext, WatcherSpec
from dtim.watchers.hookspecs import hookimpl
from dtim.watchers.report import Reporter
from dtim.watchers.rules import Rule, configure
from dtim.watchers.syslog import split_syslog
from dtim.watchers.timestamps import TimeReader
from dtim.watchers.windows import Tracker

NAME = "fail2ban"
RULES = (
    Rule("fail2ban-ban", "fail2ban banned an address", 1, 0, 80, ("banned",)),
    Rule(
        "fail2ban-recidive",
        "the recidive jail banned a repeat offender",
        1,
        0,
        90,
        ("banned", "repeat-offender"),
    ),
    Rule(
        "fail2ban-found",
        "fail2ban found repeated failures (before or without a ban)",
        5,
        600,
        60,
        (),
    ),
)
PATTERNS = ("ban", "unban", "found", "restore-ban")
_DASHED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[,.]\d+)?) (.*)$", re.S)
_EVENT = re.compile(
    r"fail2ban\.[\w.]+\s*(?:\[\d+\])?:\s+(?P<level>[A-Z]+)\s+\[(?P<jail>[^\]\s]+)\]\s+"
    r"(?P<action>Restore Ban|Increase Ban|Ban|Unban|Found)\s+(?P<ip>[0-9A-Fa-f:.]+)(?:\s|$)"
)
_LOGGER = re.compile(r"fail2ban[\w.-]*(?:\s*\[\d+\])?:")
_JAIL_TAGS = (
    (("recidive",), ("repeat-offender",)),
    (("ssh", "dropbear"), ("brute-force", "ssh")),
    (
        (
            "botsearch",
            "badbots",
            "noscript",
            "nohome",
            "shellshock",
            "overflows",
            "fakegooglebot",
            "bad-request",
        ),
        ("scanner", "web"),
    ),
    (("modsecurity", "php-url-fopen", "wordpress-hard"), ("exploit-attempt", "web")),
    (("limit-req", "http-flood"), ("flood", "web")),
    (
        (
            "http-auth",
            "apache-auth",
            "pass",
            "wordpress",
            "wp-",
            "nextcloud",
            "gitlab",
            "grafana",
            "roundcube",
            "sogo",
            "webmin",
        ),
        ("brute-force", "web"),
    ),
    (
        (
            "postfix",
            "dovecot",
            "sasl",
            "exim",
            "courier",
            "sendmail",
            "smtp",
            "imap",
            "pop3",
            "cyrus",
            "qmail",
        ),
        ("brute-force", "mail"),
    ),
    (("portscan", "portsentry", "scanlogd", "psad"), ("scanner", "port-scan")),
    (("asterisk", "freeswitch", "sip"), ("brute-force", "voip")),
    (("mysql", "postgres", "mongodb", "mssql", "redis"), ("brute-force", "database")),
    (("vsftpd", "proftpd", "pure-ftpd", "ftp"), ("brute-force", "ftp")),
)


def jail_tags(jail: str) -> tuple[str, ...]:
    """Tags implied by a jail's name (``sshd`` → brute-force, ssh)."""
    lowered = jail.lower()
    for needles, tags in _JAIL_TAGS:
        if any(needle in lowered for needle in needles):
            return tags
    return ("brute-force",)


@dataclass(slots=True)
class JailEvent(Observation):
    """A fail2ban action on an address in a jail."""

    jail: str
    action: str
    ip: str
    host: str


class Fail2banParser:
    """Reads fail2ban.log lines (own timestamp format or through syslog/journal)."""

    def __init__(self, reader: TimeReader) -> None:
        self.reader = reader

    def parse(self, line: str) -> Observation | None:
        """One fail2ban line; None for lines that are not Ban/Unban/Found.

        Raises:
            ParseError: the line has no recognisable timestamp, or is not fail2ban's.
        """
        host = ""
        try:
            dashed = _DASHED.match(line)
            if dashed is not None:
                when, rest = self.reader.dashed(dashed.group(1)), dashed.group(2)
            else:
                parts = split_syslog(line, self.reader)
                if parts is None:
                    raise ParseError(NAME, "no timestamp")
                when, host = parts.time, parts.host
                rest = f"{parts.program}: {parts.message}"
        except (ValueError, KeyError) as exc:
            raise ParseError(NAME, f"bad timestamp: {exc}") from None
        match = _EVENT.search(rest)
        if match is None:
            if _LOGGER.search(rest) is None:
                raise ParseError(NAME, "not a fail2ban line")
            return None
        action = match.group("action")
        pattern = {"Ban": "ban", "Unban": "unban", "Found": "found"}.get(action, "restore-ban")
        return JailEvent(pattern, when, line, match.group("jail"), action, match.group("ip"), host)


class Fail2banWatcher:
    """Reports bans at once (a strong signal) and repeated ``Found`` lines per jail."""

    name = NAME

    def __init__(self, context: WatcherContext) -> None:
        rules, _ = configure(NAME, RULES, context.settings, {})
        self.parser = Fail2banParser(TimeReader(context.clock, context.timezone))
        self.report = Reporter(NAME, context)
        self.ban = Tracker(rules["fail2ban-ban"], max_keys=context.max_tracked)
        self.recidive = Tracker(rules["fail2ban-recidive"], max_keys=context.max_tracked)
        self.found = Tracker(rules["fail2ban-found"], max_keys=context.max_tracked)

    def parser_for(self, path: str) -> LineParser:
        """The one shared parser."""
        return self.parser

    def detect(self, observation: Observation) -> Sequence[Sighting]:
        """Bans fire at once; ``Found`` lines count toward the failure threshold."""
        if not isinstance(observation, JailEvent):
            return ()
        if observation.pattern == "ban":
            tracker = self.recidive if "recidive" in observation.jail.lower() else self.ban
        elif observation.pattern == "found":
            tracker = self.found
        else:
            return ()
        firing = tracker.hit(
            f"{observation.jail} {observation.ip}", observation.time, observation.line
        )
        if firing is None:
            return ()
        family = "ipv6" if ":" in observation.ip else "ipv4"
        return (
            self.report.from_firing(
                firing,
                observation.ip,
                family,
                hosts=[observation.host],
                tags=jail_tags(observation.jail),
                details={"jail": observation.jail},
            ),
        )

    def flush(self) -> Sequence[Sighting]:
        """Nothing is pending at end of input."""
        return ()


SPEC = WatcherSpec(
    NAME,
    "fail2ban log: bans and repeated failures, tagged by jail",
    InputKind.FILE,
    RULES,
    PATTERNS,
    Fail2banWatcher,
)


@hookimpl
def dtim_register_watchers() -> Sequence[WatcherSpec]:
    """Register the fail2ban watcher."""
    return (SPEC,)
