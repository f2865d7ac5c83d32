"""ufw: ``[UFW BLOCK]`` kernel lines; port scanners and block floods per source address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dtim.errors import ConfigError, ParseError
from dtim.model import Sighting
from dtim.watchers.base import InputKind, LineParser, Observation, WatcherContext, WatcherSpec
from dtim.watchers.hookspecs import hookimpl
from dtim.watchers.report import Reporter
from dtim.watchers.rules import Rule, configure, option_str
from dtim.watchers.syslog import split_syslog
from dtim.watchers.timestamps import TimeReader
from dtim.watchers.windows import Tracker

NAME = "ufw"
RULES = (
    Rule(
        "ufw-port-scan",
        "one source blocked on many distinct destination ports",
        10,
        60,
        70,
        ("scanner", "port-scan"),
    ),
    Rule(
        "ufw-block-flood",
        "one source blocked many times",
        30,
        600,
        60,
        ("scanner", "blocked-traffic"),
    ),
)
PATTERNS = ("ufw-block", "ufw-audit", "ufw-allow", "netfilter")
OPTIONS = {
    "netfilter_lines": "Plain netfilter LOG lines without a [UFW ...] prefix: "
    '"ignore" (default) or "block".',
}
_BLOCKING = frozenset({"BLOCK", "LIMIT BLOCK", "DENY", "REJECT"})
_WANTED = frozenset({"SRC", "DST", "PROTO", "DPT", "IN"})


@dataclass(slots=True)
class PacketEvent(Observation):
    """One logged packet."""

    action: str
    src: str
    dst: str
    proto: str
    port: str
    host: str

    @property
    def blocked(self) -> bool:
        """True when ufw (or the configured netfilter policy) dropped the packet."""
        return self.action in _BLOCKING


class UfwParser:
    """Reads kernel lines logged by ufw (and optionally plain netfilter LOG lines)."""

    def __init__(self, reader: TimeReader, netfilter_action: str) -> None:
        self.reader = reader
        self.netfilter_action = netfilter_action

    def parse(self, line: str) -> Observation | None:
        """One kernel line; None for other programs' lines and ufw lines without a source.

        Raises:
            ParseError: not a syslog line, or a ufw line with a bad field.
        """
        try:
            parts = split_syslog(line, self.reader)
        except (ValueError, KeyError) as exc:
            raise ParseError(NAME, f"bad timestamp: {exc}") from None
        if parts is None:
            raise ParseError(NAME, "not a syslog line")
        message = parts.message
        start = message.find("[UFW ")
        if start >= 0:
            end = message.find("]", start)
            if end < 0:
                raise ParseError(NAME, "unterminated [UFW ...] tag")
            action = message[start + 5 : end]
            pattern = (
                "ufw-block"
                if action in _BLOCKING
                else "ufw-audit"
                if action == "AUDIT"
                else "ufw-allow"
            )
        elif "SRC=" in message and "DST=" in message:
            action, pattern = self.netfilter_action, "netfilter"
        else:
            return None
        fields: dict[str, str] = {}
        for token in message[end + 1 if start >= 0 else 0 :].split():
            key, sep, value = token.partition("=")
            if sep and key in _WANTED:
                fields[key] = value
        src = fields.get("SRC")
        if not src:
            raise ParseError(NAME, "packet line without SRC=")
        if not all(c in "0123456789abcdefABCDEF.:" for c in src):
            raise ParseError(NAME, f"SRC={src!r} is not an address")
        return PacketEvent(
            pattern,
            parts.time,
            line,
            action,
            src,
            fields.get("DST", ""),
            fields.get("PROTO", "?"),
            fields.get("DPT", ""),
            parts.host,
        )


class UfwWatcher:
    """Counts blocked packets and distinct blocked ports per source address."""

    name = NAME

    def __init__(self, context: WatcherContext) -> None:
        rules, options = configure(NAME, RULES, context.settings, OPTIONS)
        netfilter = option_str(options, "netfilter_lines", "ignore", NAME)
        if netfilter not in ("ignore", "block"):
            raise ConfigError(
                'expected "ignore" or "block"', key=f"watchers.{NAME}.netfilter_lines"
            )
        self.parser = UfwParser(
            TimeReader(context.clock, context.timezone), "BLOCK" if netfilter == "block" else "LOG"
        )
        self.report = Reporter(NAME, context)
        self.scan = Tracker(rules["ufw-port-scan"], max_keys=context.max_tracked, distinct=True)
        self.flood = Tracker(rules["ufw-block-flood"], max_keys=context.max_tracked)

    def parser_for(self, path: str) -> LineParser:
        """The one shared parser."""
        return self.parser

    def detect(self, observation: Observation) -> Sequence[Sighting]:
        """Count blocked packets; fire on many ports or many blocks."""
        if not isinstance(observation, PacketEvent) or not observation.blocked:
            return ()
        found: list[Sighting] = []
        port = (
            f"{observation.proto.lower()}/{observation.port}"
            if observation.port
            else observation.proto.lower()
        )
        for tracker, value in ((self.scan, port), (self.flood, None)):
            firing = tracker.hit(observation.src, observation.time, observation.line, value)
            if firing is not None:
                hosts = [observation.host]
                if observation.dst and self.report.is_internal(observation.dst):
                    hosts.append(observation.dst)
                found.append(
                    self.report.from_firing(
                        firing, observation.src, _family(observation.src), hosts=hosts
                    )
                )
        return found

    def flush(self) -> Sequence[Sighting]:
        """Nothing is pending at end of input."""
        return ()


def _family(address: str) -> str:
    return "ipv6" if ":" in address else "ipv4"


SPEC = WatcherSpec(
    NAME,
    "ufw firewall log: port scans and block floods",
    InputKind.FILE,
    RULES,
    PATTERNS,
    UfwWatcher,
    OPTIONS,
)


@hookimpl
def dtim_register_watchers() -> Sequence[WatcherSpec]:
    """Register the ufw watcher."""
    return (SPEC,)
