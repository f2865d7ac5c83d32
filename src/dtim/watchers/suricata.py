"""Suricata: eve.json alerts, and the files and names of alerted flows.

The attacker is the external side of the alerted flow (the side outside the
node's own and private networks); when both sides are internal the alert's
source is reported with local scope. Severity 1-2 alerts are reported at
once; severity 3 is kept local (never shared). ``fileinfo`` hashes and
DNS/HTTP/TLS names are reported only for flows that raised an alert, whichever
of the two events comes first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from dtim.errors import ParseError
from dtim.model import JsonValue, Scope, Sighting
from dtim.watchers.base import InputKind, LineParser, Observation, WatcherContext, WatcherSpec
from dtim.watchers.hookspecs import hookimpl
from dtim.watchers.report import Reporter
from dtim.watchers.rules import Rule, configure
from dtim.watchers.timestamps import TimeReader
from dtim.watchers.windows import Tracker, bounded_put

NAME = "suricata"
RULES = (
    Rule(
        "suricata-alert",
        "an alert of severity 1 or 2 (external side of the flow)",
        1,
        0,
        75,
        ("ids-alert",),
        cooldown=600,
    ),
    Rule(
        "suricata-alert-low",
        "an alert of severity 3 and below: kept local",
        1,
        0,
        40,
        ("ids-alert",),
        cooldown=600,
    ),
    Rule(
        "suricata-file",
        "SHA-256 of a file carried by an alerted flow",
        1,
        0,
        70,
        ("ids-alert", "malicious-file"),
        cooldown=3600,
    ),
    Rule(
        "suricata-name",
        "DNS/HTTP/TLS name of an alerted flow",
        1,
        0,
        60,
        ("ids-alert",),
        cooldown=3600,
    ),
)
PATTERNS = ("alert", "fileinfo", "dns", "http", "tls", "other")
_SEVERITY_CONFIDENCE = {1: 85, 2: 70}
_CATEGORY_TAGS = (
    ("scan", "scanner"),
    ("brute", "brute-force"),
    ("trojan", "malware"),
    ("malware", "malware"),
    ("command and control", "c2"),
    ("exploit", "exploit-attempt"),
    ("privilege gain", "exploit-attempt"),
    ("web application attack", "exploit-attempt"),
    ("denial of service", "dos"),
    ("information leak", "recon"),
    ("policy", "policy-violation"),
)
_SIGNATURE_TAGS = (
    ("sql", "sqli"),
    ("xss", "xss"),
    ("cross site", "xss"),
    ("log4j", "log4shell"),
    ("jndi", "log4shell"),
    (" scan", "scanner"),
    ("brute", "brute-force"),
    ("cve-", "exploit-attempt"),
    ("exploit", "exploit-attempt"),
    ("traversal", "exploit-attempt"),
    ("c2", "c2"),
    ("cnc", "c2"),
)
_FLOW_CAP = 100_000


@dataclass(slots=True)
class EveEvent(Observation):
    """One eve.json record, reduced to what detection needs."""

    flow_id: str
    src: str
    dest: str
    signature: str = ""
    category: str = ""
    severity: int = 3
    names: tuple[str, ...] = ()
    sha256: tuple[str, ...] = ()
    details: dict[str, JsonValue] = field(default_factory=dict)


def _names(record: dict[str, object]) -> list[str]:
    names: list[str] = []
    http = record.get("http")
    if isinstance(http, dict) and isinstance(http.get("hostname"), str):
        names.append(http["hostname"])
    tls = record.get("tls")
    if isinstance(tls, dict) and isinstance(tls.get("sni"), str):
        names.append(tls["sni"])
    dns = record.get("dns")
    if isinstance(dns, dict):
        if isinstance(dns.get("rrname"), str):
            names.append(dns["rrname"])
        queries = dns.get("queries")
        if isinstance(queries, list):
            names.extend(
                q["rrname"]
                for q in queries
                if isinstance(q, dict) and isinstance(q.get("rrname"), str)
            )
    return names


def _hashes(record: dict[str, object]) -> list[str]:
    found: list[str] = []
    info = record.get("fileinfo")
    if isinstance(info, dict) and isinstance(info.get("sha256"), str):
        found.append(info["sha256"])
    files = record.get("files")
    if isinstance(files, list):
        found.extend(
            f["sha256"] for f in files if isinstance(f, dict) and isinstance(f.get("sha256"), str)
        )
    return found


class EveParser:
    """Reads eve.json lines."""

    def __init__(self, reader: TimeReader) -> None:
        self.reader = reader

    def parse(self, line: str) -> Observation | None:
        """One eve.json line; None for event types detection does not use.

        Raises:
            ParseError: not a JSON object, or a field of the wrong type.
        """
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise ParseError(NAME, f"not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise ParseError(NAME, "not a JSON object")
        kind = record.get("event_type")
        stamp = record.get("timestamp")
        if not isinstance(kind, str) or not isinstance(stamp, str):
            raise ParseError(NAME, "missing event_type or timestamp")
        try:
            when = self.reader.iso(stamp)
        except ValueError:
            raise ParseError(NAME, f"bad timestamp {stamp!r}") from None
        pattern = kind if kind in ("alert", "fileinfo", "dns", "http", "tls") else "other"
        if pattern == "other":
            return Observation("other", when, line)
        src, dest = record.get("src_ip"), record.get("dest_ip")
        if not isinstance(src, str) or not isinstance(dest, str):
            raise ParseError(NAME, f"{kind} event without src_ip/dest_ip")
        event = EveEvent(pattern, when, line, str(record.get("flow_id", "")), src, dest)
        event.names = tuple(_names(record))
        event.sha256 = tuple(_hashes(record))
        if pattern == "alert":
            alert = record.get("alert")
            if not isinstance(alert, dict):
                raise ParseError(NAME, "alert event without an alert object")
            severity = alert.get("severity", 3)
            if not isinstance(severity, int) or isinstance(severity, bool):
                raise ParseError(NAME, f"alert severity {severity!r} is not a number")
            event.signature = str(alert.get("signature", ""))
            event.category = str(alert.get("category", ""))
            event.severity = severity
            event.details = {
                "signature": event.signature,
                "category": event.category,
                "severity": severity,
                "signature_id": alert.get("signature_id")
                if isinstance(alert.get("signature_id"), int)
                else None,
            }
        return event


def alert_tags(signature: str, category: str) -> tuple[str, ...]:
    """Tags implied by an alert's signature and category."""
    tags = {tag for needle, tag in _CATEGORY_TAGS if needle in category.lower()}
    tags.update(tag for needle, tag in _SIGNATURE_TAGS if needle in signature.lower())
    return tuple(sorted(tags))


class SuricataWatcher:
    """Reports alerted external addresses, and the hashes and names of alerted flows."""

    name = NAME

    def __init__(self, context: WatcherContext) -> None:
        rules, _ = configure(NAME, RULES, context.settings, {})
        self.parser = EveParser(TimeReader(context.clock, context.timezone))
        self.report = Reporter(NAME, context)
        self.alerts = Tracker(rules["suricata-alert"], max_keys=context.max_tracked)
        self.low = Tracker(rules["suricata-alert-low"], max_keys=context.max_tracked)
        self.files = Tracker(rules["suricata-file"], max_keys=context.max_tracked)
        self.names = Tracker(rules["suricata-name"], max_keys=context.max_tracked)
        self._alerted: dict[str, EveEvent] = {}
        self._pending: dict[str, list[EveEvent]] = {}

    def parser_for(self, path: str) -> LineParser:
        """The one shared parser."""
        return self.parser

    def detect(self, observation: Observation) -> Sequence[Sighting]:
        """Alerts fire at once; app-layer events of alerted flows give hashes and names."""
        if not isinstance(observation, EveEvent):
            return ()
        found: list[Sighting] = []
        if observation.pattern == "alert":
            found.extend(self._alert(observation))
            alert = bounded_put(self._alerted, observation.flow_id, observation)
            found.extend(self._artefacts(observation, alert))
            for earlier in self._pending.pop(observation.flow_id, []):
                found.extend(self._artefacts(earlier, alert))
        elif observation.names or observation.sha256:
            known = self._alerted.get(observation.flow_id)
            if known is not None:
                found.extend(self._artefacts(observation, known))
            elif observation.flow_id:
                queue = self._pending.get(observation.flow_id)
                if queue is None:
                    bounded_put(self._pending, observation.flow_id, [observation])
                elif len(queue) < 16:
                    queue.append(observation)
        return found

    def _attacker(self, event: EveEvent) -> tuple[str, str]:
        src_internal = self.report.is_internal(event.src)
        dest_internal = self.report.is_internal(event.dest)
        if src_internal and not dest_internal:
            return event.dest, event.src
        return event.src, event.dest

    def _alert(self, event: EveEvent) -> list[Sighting]:
        attacker, victim = self._attacker(event)
        shared = event.severity in _SEVERITY_CONFIDENCE
        tracker = self.alerts if shared else self.low
        firing = tracker.hit(f"{attacker} {event.signature}", event.time, event.line)
        if firing is None:
            return []
        hosts = [victim] if self.report.is_internal(victim) else []
        confidence = _SEVERITY_CONFIDENCE.get(event.severity) if shared else None
        return [
            self.report.from_firing(
                firing,
                attacker,
                "ipv6" if ":" in attacker else "ipv4",
                hosts=hosts,
                tags=alert_tags(event.signature, event.category),
                details=event.details,
                confidence=confidence,
                scope=None if shared else Scope.LOCAL,
            )
        ]

    def _artefacts(self, event: EveEvent, alert: EveEvent) -> list[Sighting]:
        found: list[Sighting] = []
        local = alert.severity not in _SEVERITY_CONFIDENCE
        tags = alert_tags(alert.signature, alert.category)
        for digest in event.sha256:
            firing = self.files.hit(digest.lower(), event.time, event.line)
            if firing is not None:
                found.append(
                    self.report.from_firing(
                        firing,
                        digest,
                        "sha256",
                        tags=tags,
                        details=alert.details,
                        scope=Scope.LOCAL if local else None,
                    )
                )
        for name in event.names:
            if _looks_like_address(name):
                continue
            firing = self.names.hit(name.lower(), event.time, event.line)
            if firing is None:
                continue
            try:
                found.append(
                    self.report.from_firing(
                        firing,
                        name,
                        "domain",
                        tags=tags,
                        details=alert.details,
                        scope=Scope.LOCAL if local else None,
                    )
                )
            except ParseError:
                continue  # a name that is not a valid domain (garbage SNI) is not an indicator
        return found

    def flush(self) -> Sequence[Sighting]:
        """Names and files of flows that never alerted are dropped."""
        self._pending.clear()
        return ()


def _looks_like_address(name: str) -> bool:
    stripped = name.strip("[]")
    return ":" in stripped or stripped.replace(".", "").isdigit()


SPEC = WatcherSpec(
    NAME,
    "Suricata eve.json: alerts, alerted files and names",
    InputKind.FILE,
    RULES,
    PATTERNS,
    SuricataWatcher,
)


@hookimpl
def dtim_register_watchers() -> Sequence[WatcherSpec]:
    """Register the Suricata watcher."""
    return (SPEC,)
