"""Zeek: notices (scans, password guessing, attacks), intel hits, rejected-connection scanners,
and the hashes of files tied to reported notices or intel hits.

Zeek writes notice.log and files.log independently, so a notice and the file
it names (by ``fuid``) are joined whichever arrives first, in bounded tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from dtim.errors import ParseError
from dtim.model import Sighting
from dtim.watchers.base import InputKind, LineParser, Observation, WatcherContext, WatcherSpec
from dtim.watchers.hookspecs import hookimpl
from dtim.watchers.report import Reporter
from dtim.watchers.rules import Rule, configure, option_list
from dtim.watchers.timestamps import TimeReader
from dtim.watchers.windows import Firing, Tracker, bounded_put
from dtim.watchers.zeekformat import LOGS, ZeekParser, ZeekRecord

NAME = "zeek"
RULES = (
    Rule(
        "zeek-scan",
        "a Scan:: notice (port, address or random scan)",
        1,
        0,
        75,
        ("scanner",),
        cooldown=3600,
    ),
    Rule(
        "zeek-bruteforce",
        "a password-guessing notice (SSH, FTP)",
        1,
        0,
        80,
        ("brute-force",),
        cooldown=3600,
    ),
    Rule(
        "zeek-attack",
        "an attack notice (SQL injection, Heartbleed ...)",
        1,
        0,
        75,
        ("exploit-attempt",),
        cooldown=3600,
    ),
    Rule(
        "zeek-malware-host",
        "the remote end of a malware-download notice",
        1,
        0,
        60,
        ("malware",),
        cooldown=3600,
    ),
    Rule("zeek-intel", "an Intel framework hit", 1, 0, 70, ("intel-match",), cooldown=3600),
    Rule(
        "zeek-conn-rejected",
        "one source rejected on many distinct targets",
        20,
        300,
        65,
        ("scanner", "port-scan"),
    ),
    Rule(
        "zeek-file-hash",
        "hash of a file tied to a reported notice or intel hit",
        1,
        0,
        75,
        ("malicious-file",),
        cooldown=86400,
    ),
)
PATTERNS = (*LOGS, "other")
OPTIONS = {
    "logs": "Zeek logs to follow in zeek_log_dir (default notice, intel, conn, files).",
    "conn_states": 'conn.log states that count as rejected (default ["REJ"]).',
}
_NOTES = {
    "Scan::Port_Scan": ("zeek-scan", ("port-scan",)),
    "Scan::Address_Scan": ("zeek-scan", ("network-scan",)),
    "Scan::Random_Scan": ("zeek-scan", ("network-scan",)),
    "SSH::Password_Guessing": ("zeek-bruteforce", ("ssh",)),
    "FTP::Bruteforcing": ("zeek-bruteforce", ("ftp",)),
    "HTTP::SQL_Injection_Attacker": ("zeek-attack", ("sqli",)),
    "HTTP::SQL_Injection_Victim": ("zeek-attack", ("sqli",)),
    "Heartbleed::SSL_Heartbeat_Attack": ("zeek-attack", ("heartbleed",)),
    "Heartbleed::SSL_Heartbeat_Attack_Success": ("zeek-attack", ("heartbleed",)),
    "TeamCymruMalwareHashRegistry::Match": ("zeek-malware-host", ()),
}
_INTEL_TYPES = {
    "Intel::ADDR": "ip",
    "Intel::DOMAIN": "domain",
    "Intel::URL": "url",
    "Intel::EMAIL": "email",
    "Intel::FILE_HASH": "hash",
}
_HASHES = (("sha256", "sha256"), ("sha1", "sha1"), ("md5", "md5"))


class ZeekWatcher:
    """Detects from notice, intel, conn and files records."""

    name = NAME

    def __init__(self, context: WatcherContext) -> None:
        rules, options = configure(NAME, RULES, context.settings, OPTIONS)
        self.logs = option_list(options, "logs", LOGS, NAME)
        self.conn_states = frozenset(option_list(options, "conn_states", ("REJ",), NAME))
        self.reader = TimeReader(context.clock, context.timezone)
        self.report = Reporter(NAME, context)
        self.trackers = {
            rule.name: Tracker(
                rule, max_keys=context.max_tracked, distinct=rule.name == "zeek-conn-rejected"
            )
            for rule in rules.values()
        }
        self._files: dict[str, ZeekRecord] = {}
        self._notices: dict[str, tuple[ZeekRecord, tuple[str, ...]]] = {}

    def parser_for(self, path: str) -> LineParser:
        """A fresh parser per file: TSV headers are per-file."""
        return ZeekParser(self.reader, path)

    def detect(self, observation: Observation) -> Sequence[Sighting]:
        """Dispatch on the log type."""
        if not isinstance(observation, ZeekRecord):
            return ()
        if observation.log == "notice":
            return self._notice(observation)
        if observation.log == "intel":
            return self._intel(observation)
        if observation.log == "conn":
            return self._conn(observation)
        if observation.log == "files":
            return self._file(observation)
        return ()

    def _hit(
        self, rule: str, key: str, record: ZeekRecord, value: str | None = None
    ) -> Firing | None:
        return self.trackers[rule].hit(key, record.time, record.line, value)

    def _notice(self, record: ZeekRecord) -> list[Sighting]:
        note = record.text("note")
        known = _NOTES.get(note)
        if known is None:
            return []
        rule, tags = known
        if rule == "zeek-malware-host":
            address = record.text("id.resp_h") or record.text("dst")
            internal = record.text("id.orig_h") or record.text("src")
        else:
            address = record.text("src") or record.text("id.orig_h")
            internal = record.text("dst") or record.text("id.resp_h")
        found: list[Sighting] = []
        if address:
            firing = self._hit(rule, f"{note} {address}", record)
            if firing is not None:
                hosts = [internal] if internal and self.report.is_internal(internal) else []
                found.append(
                    self.report.from_firing(
                        firing,
                        address,
                        _family(address),
                        hosts=hosts,
                        tags=tags,
                        details={"note": note, "msg": record.text("msg")[:300]},
                    )
                )
        fuid = record.text("fuid")
        if fuid:
            label = (*tags, "zeek-notice")
            bounded_put(self._notices, fuid, (record, label))
            file_record = self._files.get(fuid)
            if file_record is not None:
                found.extend(self._hashes(file_record, label, note))
        return found

    def _intel(self, record: ZeekRecord) -> list[Sighting]:
        value = record.text("seen.indicator")
        kind = _INTEL_TYPES.get(record.text("seen.indicator_type"))
        found: list[Sighting] = []
        if value and kind is not None:
            type_ = (
                _family(value) if kind == "ip" else _hash_type(value) if kind == "hash" else kind
            )
            firing = self._hit("zeek-intel", f"{type_} {value}", record)
            if type_ and firing is not None:
                hosts = [
                    h
                    for h in (record.text("id.orig_h"), record.text("id.resp_h"))
                    if h and self.report.is_internal(h)
                ]
                # An intel value DTIM cannot represent (a bad URL ...) stays in Zeek's log only.
                with contextlib.suppress(ParseError):
                    found.append(
                        self.report.from_firing(
                            firing,
                            value,
                            type_,
                            hosts=hosts,
                            details={
                                "where": record.text("seen.where"),
                                "sources": ",".join(record.items("sources")),
                            },
                        )
                    )
        fuid = record.text("fuid")
        if fuid:
            bounded_put(self._notices, fuid, (record, ("intel-match",)))
            file_record = self._files.get(fuid)
            if file_record is not None:
                found.extend(self._hashes(file_record, ("intel-match",), "intel"))
        return found

    def _conn(self, record: ZeekRecord) -> list[Sighting]:
        if record.text("conn_state") not in self.conn_states:
            return []
        source = record.text("id.orig_h")
        target = f"{record.text('id.resp_h')}:{record.text('id.resp_p')}/{record.text('proto')}"
        firing = self._hit("zeek-conn-rejected", source, record, target)
        if firing is None or not source:
            return []
        return [self.report.from_firing(firing, source, _family(source))]

    def _file(self, record: ZeekRecord) -> list[Sighting]:
        fuid = record.text("fuid")
        if not fuid:
            return []
        bounded_put(self._files, fuid, record)
        notice = self._notices.get(fuid)
        if notice is None:
            return []
        return self._hashes(record, notice[1], notice[0].text("note") or "intel")

    def _hashes(self, record: ZeekRecord, tags: tuple[str, ...], note: str) -> list[Sighting]:
        found: list[Sighting] = []
        hosts = [
            h
            for h in record.items("tx_hosts") + record.items("rx_hosts")
            if self.report.is_internal(h)
        ]
        for field, type_ in _HASHES:
            digest = record.text(field)
            if not digest:
                continue
            firing = self._hit("zeek-file-hash", digest.lower(), record)
            if firing is not None:
                found.append(
                    self.report.from_firing(
                        firing,
                        digest,
                        type_,
                        hosts=hosts,
                        paths=[record.text("filename")],
                        tags=tags,
                        details={"note": note, "mime_type": record.text("mime_type")},
                    )
                )
        return found

    def flush(self) -> Sequence[Sighting]:
        """Unjoined notices and files are dropped."""
        return ()


def _family(address: str) -> str:
    return "ipv6" if ":" in address else "ipv4"


def _hash_type(value: str) -> str:
    return {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}.get(len(value), "")


SPEC = WatcherSpec(
    NAME,
    "Zeek logs: notices, intel hits, rejected-connection scanners, hashes of noticed files",
    InputKind.DIRECTORY,
    RULES,
    PATTERNS,
    ZeekWatcher,
    OPTIONS,
)


@hookimpl
def dtim_register_watchers() -> Sequence[WatcherSpec]:
    """Register the Zeek watcher."""
    return (SPEC,)
