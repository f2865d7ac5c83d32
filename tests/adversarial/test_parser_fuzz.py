"""Parser fuzzing: hostile input into everything that parses untrusted text; only documented errors.

Targets, and the only errors each may raise:

* every registered watcher, through the tail loop's :class:`LineProcessor` (parse and
  detect): nothing escapes (a bad line is a counted ``ParseError``);
* the VirusTotal answer parser: ``WatcherError``;
* ``[watchers.<name>]`` tables given to every watcher: ``ConfigError``;
* the config loader (TOML text, ``DTIM__SECTION__KEY`` and ``--set``): ``ConfigError``;
* STIX bundle, MISP feed and CSV imports (``dtim indicators import``): ``StixError`` or
  ``ValidationError``;
* RFC 9421 request and response verification, and the ASGI signature guard:
  ``SignatureError``, answered 401 (or 413) as JSON.

``tests/watchers/test_fuzz.py`` already feeds short text and cut sample lines to each
parser; this module adds lines up to the tail's length cap (regular expressions must
not backtrack for long), Zeek TSV headers and per-log file names, structured JSON for
Suricata and Zeek, and a 100 MB single line through the tailer with a memory bound.

Every run is derandomized (the same inputs each time) and bounded: a CPU-time cap per
input and a Hypothesis deadline. ``-m slow`` runs the same properties with more examples.
The number of inputs tried per target is printed at the end of the module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Message

from dtim.api.signatures import SignatureGuard
from dtim.config import load_settings
from dtim.crypto.httpsig import content_digest
from dtim.crypto.identity import NodeIdentity
from dtim.crypto.signatures import (
    MessageSigner,
    PeerKey,
    RequestVerifier,
    StaticPeerKeys,
    verify_response,
)
from dtim.errors import (
    ConfigError,
    ParseError,
    SignatureError,
    StixError,
    ValidationError,
    WatcherError,
)
from dtim.model import FakeClock, Indicator, make_indicator
from dtim.model.peer import PeerStatus
from dtim.stix.bundle import ImportReport
from dtim.taxii.exports import read_indicators
from dtim.watchers.base import MemorySink, WatcherContext, WatcherSpec
from dtim.watchers.clamav import hash_file
from dtim.watchers.ingest import ingest
from dtim.watchers.plugins import make_plugin_manager, registered_watchers
from dtim.watchers.runner import LineProcessor, WatcherRunner
from dtim.watchers.suricata import EveParser
from dtim.watchers.tail import FileTailer
from dtim.watchers.timestamps import TimeReader
from dtim.watchers.virustotal import VirusTotalEnricher, VtAnswer
from dtim.watchers.zeekformat import ZeekParser
from tests.adversarial.hostile_inputs import (
    BODY,
    KEYS,
    NESTED,
    PATH,
    change_headers,
    config_case,
    csv_file,
    eve_record,
    guard_case,
    json_text,
    long_lines,
    misp_file,
    request_case,
    settings_tables,
    stix_file,
    vt_reply,
    zeek_file,
    zeek_header,
    zeek_json_line,
    zeek_tsv_line,
)
from tests.watchers.corpus import SAMPLES, load

NOW = datetime(2026, 11, 28, tzinfo=UTC)
PER_INPUT_CPU_SECONDS = 1.0
"""CPU time one input may take (CPU, not wall clock, so a loaded machine does not fail it).

It is the calling thread's: the process's would also count threads that earlier tests
left serving in the background, which once put 1.01 s on an input that takes 1 ms."""
DEADLINE = timedelta(seconds=10)
"""Hypothesis' wall-clock deadline per example: a hang guard, generous for shared CI."""
SLOW_FACTOR = 20
SCALES = [pytest.param(1, id="fast"), pytest.param(SLOW_FACTOR, id="deep", marks=pytest.mark.slow)]
TRIED: Counter[str] = Counter()
"""Inputs tried per target, printed when the module ends."""
MEASURED: dict[str, str] = {}
"""Memory figures of the huge-line tests, printed when the module ends."""

SPECS: dict[str, WatcherSpec] = registered_watchers(make_plugin_manager(load_entrypoints=False))
NAMES = sorted(SPECS)
SEEDS: dict[str, list[str]] = {}
for _path in sorted(SAMPLES.glob("*/*.log")):
    SEEDS.setdefault(_path.parent.name, []).extend(s.line for s in load(_path).samples)
ALL_SEEDS = [line for name in sorted(SEEDS) for line in SEEDS[name]]


@pytest.fixture(scope="module", autouse=True)
def _report_inputs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not TRIED:
        return
    counts = ", ".join(f"{name}={count}" for name, count in sorted(TRIED.items()))
    figures = ", ".join(f"{name}={value}" for name, value in sorted(MEASURED.items()))
    with capture.global_and_fixture_disabled():  # straight to the terminal, also under -q
        reporter.write_line(f"\nparser fuzzing, inputs tried per target: {counts}")
        if figures:
            reporter.write_line(f"parser fuzzing, memory: {figures}")


def fuzz(target: str, strategy: st.SearchStrategy[Any], examples: int) -> Callable[..., Any]:
    """Decorate ``check`` into a derandomized property over ``strategy``, counted and timed."""

    def decorate(check: Callable[[Any], None]) -> Callable[[], None]:
        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=DEADLINE,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )
        @given(strategy)
        def property_(value: Any) -> None:
            TRIED[target] += 1
            started = time.thread_time()
            check(value)
            spent = time.thread_time() - started
            assert spent < PER_INPUT_CPU_SECONDS, f"{target}: {spent:.2f} s of CPU for one input"

        return property_

    return decorate


# --- watchers: long lines, up to the tail's cap ---------------------------------------------


def make_watcher(name: str) -> Any:
    return SPECS[name].create(WatcherContext(clock=FakeClock(NOW), timezone=UTC))


def process(processor: LineProcessor, file: str, lines: list[str]) -> None:
    """The tail loop's handling of lines: nothing may escape, the counts must add up."""
    before = processor.stats.lines
    processor.lines(file, lines, 1)
    assert processor.stats.lines == before + len(lines)
    processor.watcher.flush()


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", NAMES)
def test_long_lines_are_parsed_in_bounded_time(name: str, scale: int) -> None:
    processor = LineProcessor(make_watcher(name))
    seeds = SEEDS.get(name) or ALL_SEEDS
    lines = st.one_of(long_lines(seeds), long_lines(ALL_SEEDS))

    @fuzz(f"watcher:{name}:long-lines", lines, 30 * scale)
    def check(line: str) -> None:
        process(processor, "fuzz.log", [line])

    check()


# --- watchers: Zeek TSV headers and JSON records, per log file --------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_zeek_headers_and_records(scale: int) -> None:
    watcher = make_watcher("zeek")
    documents = st.tuples(
        zeek_file,
        st.lists(st.one_of(zeek_header, zeek_tsv_line, zeek_json_line), min_size=1, max_size=12),
    )

    @fuzz("watcher:zeek:records", documents, 80 * scale)
    def check(document: tuple[str, list[str]]) -> None:
        file, lines = document
        # A fresh processor, so a fresh parser: TSV headers are per file.
        process(LineProcessor(watcher), file, lines)

    check()


# --- watchers: Suricata eve.json records ----------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_suricata_records(scale: int) -> None:
    processor = LineProcessor(make_watcher("suricata"))
    flow = st.lists(
        st.one_of(eve_record.map(json_text), st.sampled_from(NESTED)), min_size=1, max_size=6
    )

    @fuzz("watcher:suricata:records", flow, 60 * scale)
    def check(lines: list[str]) -> None:
        process(processor, "eve.json", lines)

    check()


@pytest.mark.parametrize("text", NESTED, ids=["arrays", "objects", "balanced"])
def test_deeply_nested_json_is_a_parse_error(text: str) -> None:
    # Regression: json.loads raised RecursionError, which escaped the tail loop's handler.
    reader = TimeReader(FakeClock(NOW), UTC)
    with pytest.raises(ParseError, match="not JSON"):
        EveParser(reader).parse(text)
    with pytest.raises(ParseError, match="not JSON"):  # Zeek takes a line for JSON by its "{"
        ZeekParser(reader, "conn.log").parse(text if text.startswith("{") else '{"a":' + text)


# --- watchers: [watchers.<name>] tables -----------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", NAMES)
def test_watcher_settings_tables(name: str, scale: int) -> None:
    spec = SPECS[name]

    @fuzz(f"watcher:{name}:settings", settings_tables(spec), 25 * scale)
    def check(table: dict[str, object]) -> None:
        with contextlib.suppress(ConfigError):
            spec.create(WatcherContext(settings=table, clock=FakeClock(NOW), timezone=UTC))

    check()


def test_clamav_found_line_naming_a_fifo_does_not_block(tmp_path: Path) -> None:
    # Regression: open() of a FIFO named in a FOUND line blocked the watcher forever.
    fifo = tmp_path / "looks-infected"
    os.mkfifo(fifo)
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(hash_file(str(fifo))), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        with open(fifo, "wb"):  # release the blocked reader before failing
            pass
        worker.join(timeout=10)
        pytest.fail("hashing a FIFO blocked")
    assert results == [None]


# --- VirusTotal answers -----------------------------------------------------------------------


def vt_lookup(status: int, body: bytes) -> VtAnswer:
    async def lookup() -> VtAnswer:
        def reply(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, content=body)

        async def no_wait(seconds: float) -> None:
            return None

        async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as client:
            enricher = VirusTotalEnricher(
                client, "key", rate_per_minute=1e9, max_retries=0, sleep=no_wait
            )
            indicator = make_indicator("45.9.20.11", "ipv4", now=NOW, confidence=50)
            enriched = await enricher.enrich(indicator)
            assert 0 <= enriched.confidence <= 100
            answer = await enricher.lookup("ipv4", "45.9.20.11")
            assert answer is not None
            return answer

    return asyncio.run(lookup())


@pytest.mark.parametrize("scale", SCALES)
def test_virustotal_answers(scale: int) -> None:
    @fuzz("virustotal:answer", vt_reply, 60 * scale)
    def check(reply: tuple[int, bytes]) -> None:
        try:
            answer = vt_lookup(*reply)
        except WatcherError:
            return
        assert min(answer.malicious, answer.suspicious, answer.harmless, answer.undetected) >= 0

    check()


@pytest.mark.parametrize(
    "stats", ["1e400", "-1", '"-3"', "[1]"], ids=["infinite", "negative", "negative-text", "list"]
)
def test_virustotal_odd_counts_are_unexpected_documents(stats: str) -> None:
    # Regression: 1e400 raised OverflowError; negative counts were taken as they came.
    body = f'{{"data":{{"attributes":{{"last_analysis_stats":{{"malicious":{stats}}}}}}}}}'
    with pytest.raises(WatcherError, match="unexpected document"):
        vt_lookup(200, body.encode())


def test_virustotal_nested_answer_is_an_unexpected_document() -> None:
    with pytest.raises(WatcherError, match="unexpected document"):
        vt_lookup(200, NESTED[0].encode())


# --- the config loader ------------------------------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_config_loader_raises_only_config_errors(scale: int, tmp_path: Path) -> None:
    config = tmp_path / "config" / "dtim.toml"
    config.parent.mkdir()

    @fuzz("config:loader", config_case, 120 * scale)
    def check(case: tuple[bytes, dict[str, str], dict[str, str]]) -> None:
        raw, environ, overrides = case
        config.write_bytes(raw)
        try:
            loaded = load_settings(tmp_path, environ=environ, overrides=overrides)
        except ConfigError:
            return
        for section, key in KEYS:
            value = getattr(getattr(loaded.settings, section), key)
            if isinstance(value, float):
                assert math.isfinite(value), f"{section}.{key} = {value}"

    check()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[network]\ngossip_interval_seconds = nan\n", "network.gossip_interval_seconds"),
        ("[aging]\nipv4 = inf\n", "aging.ipv4"),
        ("[privacy]\ndp_epsilon = -inf\n", "privacy.dp_epsilon"),
        ("[aging]\nurl = 1" + "0" * 400 + "\n", "aging.url"),
        ("a = " + "[" * 5_000 + "]" * 5_000 + "\n", None),
    ],
    ids=["nan", "inf", "minus-inf", "beyond-float", "nested"],
)
def test_config_values_that_used_to_slip_through(
    tmp_path: Path, text: str, key: str | None
) -> None:
    # Regressions: nan/inf passed every range check; a huge integer or deep nesting raised
    # OverflowError/RecursionError instead of a ConfigError.
    config = tmp_path / "config" / "dtim.toml"
    config.parent.mkdir()
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    assert info.value.key == key
    assert info.value.path == str(config)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DTIM__NETWORK__REQUEST_TIMEOUT_SECONDS", "nan"),
        ("DTIM__AGING__MD5", "1e999"),
        ("DTIM__PRIVACY__OWN_NETWORKS", "[" * 5_000),
    ],
)
def test_environment_values_that_used_to_slip_through(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(tmp_path, environ={name: value})


# --- imports: STIX bundles, MISP feeds, CSV -------------------------------------------------

IMPORT_ERRORS = (StixError, ValidationError)


def import_file(path: Path, format: str) -> None:
    report = ImportReport()
    try:
        for indicator in read_indicators(path, format, report, now=NOW, source="fuzz"):
            assert isinstance(indicator, Indicator)
    except IMPORT_ERRORS:
        return
    assert report.indicators >= 0


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(
    ("format", "strategy", "examples"),
    [("stix", stix_file, 80), ("misp", misp_file, 80), ("csv", csv_file, 80)],
    ids=["stix", "misp", "csv"],
)
def test_imports_raise_only_import_errors(
    format: str, strategy: st.SearchStrategy[bytes], examples: int, scale: int, tmp_path: Path
) -> None:
    path = tmp_path / f"import.{format if format != 'misp' else 'json'}"

    @fuzz(f"import:{format}", strategy, examples * scale)
    def check(content: bytes) -> None:
        path.write_bytes(content)
        import_file(path, format)

    check()


@pytest.mark.parametrize(
    "event",
    [
        {"Attribute": 5},
        {"Object": 1.5},
        {"Object": [{"Attribute": True}]},
    ],
    ids=["attribute-number", "object-number", "object-attribute-bool"],
)
def test_misp_event_with_a_non_list_is_a_stix_error(tmp_path: Path, event: object) -> None:
    # Regression: list(5) and iterating a float raised TypeError.
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"Event": event}))
    with pytest.raises(StixError, match="must be a list"):
        list(read_indicators(path, "misp", ImportReport(), now=NOW, source="fuzz"))


def test_misp_attribute_with_odd_confidence_or_timestamp_is_skipped_or_kept(tmp_path: Path) -> None:
    # Regressions: a non-numeric confidence tag raised ValueError; a timestamp beyond the
    # calendar raised OverflowError. The first attribute is skipped with the reason, the
    # second is imported with the import time.
    attributes = [
        {"type": "ip-dst", "value": "45.9.20.11", "Tag": [{"name": 'dtim:confidence="high"'}]},
        {"type": "domain", "value": "evil.example.com", "timestamp": "9" * 30},
    ]
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"Event": {"Attribute": attributes}}))
    report = ImportReport()
    found = list(read_indicators(path, "misp", report, now=NOW, source="fuzz"))
    assert [i.value for i in found] == ["evil.example.com"]
    assert found[0].first_seen == NOW
    assert len(report.skipped) == 1
    assert "confidence" in report.skipped[0].reason


def test_csv_cell_over_the_field_limit_is_a_stix_error(tmp_path: Path) -> None:
    # Regression: csv.Error escaped the import.
    path = tmp_path / "big.csv"
    path.write_bytes(b'type,value\nipv4,45.9.20.11\ndomain,"' + b"a" * 200_000 + b'"\n')
    with pytest.raises(StixError, match="CSV line 3"):
        list(read_indicators(path, "csv", ImportReport(), now=NOW, source="fuzz"))


# --- request signatures -----------------------------------------------------------------------

SENDER = NodeIdentity.generate()
RECEIVER = NodeIdentity.generate()
SIGNED_AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("scale", SCALES)
def test_request_verifier_raises_only_signature_errors(scale: int) -> None:
    clock = FakeClock(SIGNED_AT)
    keys = StaticPeerKeys([PeerKey(SENDER.node_id, SENDER.public_key_b64, PeerStatus.APPROVED)])
    verifier = RequestVerifier(RECEIVER.node_id, keys, clock=clock)
    signer = MessageSigner(SENDER, clock=clock)
    outcomes: Counter[str] = Counter()

    @fuzz("signature:request", request_case, 120 * scale)
    def check(case: tuple[list[tuple[str, str, Any]], bytes, str, int]) -> None:
        changes, body, path, skew = case
        signed = signer.sign_request(
            method="post", path=PATH, query="", body=BODY, recipient=RECEIVER.node_id
        )
        headers = change_headers(list(signed.headers), changes)
        moment = SIGNED_AT + timedelta(seconds=skew)
        try:
            verified = asyncio.run(
                verifier.verify(
                    method="POST", path=path, query="", headers=headers, body=body, now=moment
                )
            )
        except SignatureError as exc:
            outcomes[exc.reason.split(":")[0]] += 1
            return
        outcomes["verified"] += 1
        # Only the genuine signature over the genuine request can pass.
        assert verified.signature == signed.signature
        assert (body, path) == (BODY, PATH)

    check()
    assert outcomes["verified"] > 0
    assert sum(outcomes.values()) > outcomes["verified"]


@pytest.mark.parametrize("scale", SCALES)
def test_response_verifier_raises_only_signature_errors(scale: int) -> None:
    signer = MessageSigner(RECEIVER, clock=FakeClock(SIGNED_AT))
    request_signature = bytes(range(64))
    outcomes: Counter[str] = Counter()

    @fuzz("signature:response", request_case, 60 * scale)
    def check(case: tuple[list[tuple[str, str, Any]], bytes, str, int]) -> None:
        changes, body, _path, skew = case
        signed = signer.sign_response(
            status=200, body=BODY, requester=SENDER.node_id, request_signature=request_signature
        )
        headers = change_headers(list(signed.headers), changes)
        try:
            verify_response(
                status=200,
                headers=headers,
                body=body,
                responder_public_key=RECEIVER.public_key_b64,
                our_node_id=SENDER.node_id,
                request_signature=request_signature,
                now=SIGNED_AT + timedelta(seconds=skew),
            )
        except SignatureError:
            outcomes["rejected"] += 1
            return
        outcomes["verified"] += 1
        assert body == BODY

    check()
    assert outcomes["verified"] > 0
    assert outcomes["rejected"] > 0


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def call_guard(
    guard: SignatureGuard, headers: list[tuple[str, str]], chunks: list[bytes], path: str
) -> list[Message]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path or "/",
        "raw_path": (path or "/").encode("latin-1"),
        "query_string": b"",
        # Any bytes can arrive; the guard reads them as latin-1.
        "headers": [
            (k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
            for k, v in headers
        ],
        "client": ("127.0.0.1", 1),
    }
    pending: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent


@pytest.mark.parametrize("scale", SCALES)
def test_signature_guard_answers_json_401_or_413(scale: int) -> None:
    keys = StaticPeerKeys([PeerKey(SENDER.node_id, SENDER.public_key_b64, PeerStatus.APPROVED)])
    guard = SignatureGuard(
        _ok,
        RequestVerifier(RECEIVER.node_id, keys),
        signer=MessageSigner(RECEIVER),
        max_body_bytes=100,
    )

    @fuzz("signature:guard", guard_case, 80 * scale)
    def check(case: tuple[list[tuple[str, str]], list[bytes], str]) -> None:
        headers, chunks, path = case
        sent = call_guard(guard, headers, chunks, path)
        assert sent[0]["type"] == "http.response.start"
        assert sent[0]["status"] in (401, 413)
        document = json.loads(sent[1]["body"])
        assert set(document) == {"error", "reason"}

    check()


def test_signature_guard_refuses_a_non_ascii_content_length() -> None:
    # Regression: "²".isdigit() is True but int("²") raises ValueError, which escaped as a 500.
    keys = StaticPeerKeys([])
    guard = SignatureGuard(_ok, RequestVerifier(RECEIVER.node_id, keys), max_body_bytes=100)
    sent = call_guard(guard, [("content-length", "\u00b2")], [b""], "/x")
    assert sent[0]["status"] == 401
    assert json.loads(sent[1]["body"]) == {
        "error": "signature rejected",
        "reason": "missing signature",
    }


def test_signed_request_passes_the_guard() -> None:
    # The guard fuzzing above can fail: a correct request does get through.
    keys = StaticPeerKeys([PeerKey(SENDER.node_id, SENDER.public_key_b64, PeerStatus.APPROVED)])
    guard = SignatureGuard(_ok, RequestVerifier(RECEIVER.node_id, keys), max_body_bytes=100)
    signed = MessageSigner(SENDER).sign_request(
        method="POST", path="/x", query="", body=BODY, recipient=RECEIVER.node_id
    )
    sent = call_guard(guard, list(signed.headers), [BODY], "/x")
    assert sent[0]["status"] == 200
    assert content_digest(BODY) in dict(signed.headers).values()


# --- memory: a 100 MB single line through the tailer and the parser ---------------------------

HUGE_LINE_BYTES = 100 * 1024 * 1024
MEMORY_BOUND = 16 * 1024 * 1024
"""Peak Python allocation allowed while reading the huge line: a few batches, never the line."""
UFW_LINE = (
    "Nov 27 10:00:00 host kernel: [UFW BLOCK] IN=eth0 OUT= MAC= SRC=45.9.20.11 DST=10.0.0.5 "
    "LEN=40 TOS=0x00 PREC=0x00 TTL=240 ID=1 PROTO=TCP SPT=4444 DPT=22 WINDOW=1024 RES=0x00 "
    "SYN URGP=0"
)


@pytest.fixture(scope="module")
def huge_line_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A log whose first line is 100 MB of one byte, followed by one ordinary ufw line."""
    path = tmp_path_factory.mktemp("huge") / "ufw.log"
    block = b"A" * (1024 * 1024)
    with path.open("wb") as out:
        for _ in range(HUGE_LINE_BYTES // len(block)):
            out.write(block)
        out.write(b"\n" + UFW_LINE.encode() + b"\n")
    yield path
    path.unlink()


async def test_a_100_mb_line_is_skipped_in_bounded_memory(huge_line_file: Path) -> None:
    sink = MemorySink()
    runner = WatcherRunner(
        make_watcher("ufw"), [FileTailer("ufw", str(huge_line_file), start_at="beginning")], sink
    )
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        await runner.poll_once()
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
        runner.close()
    TRIED["tail:100MB-line"] += 1
    MEASURED["tail peak"] = f"{peak / 2**20:.1f} MiB"
    assert peak < MEMORY_BOUND, f"peak allocation {peak / 2**20:.1f} MiB"
    stats = runner.stats
    assert (stats.oversized, stats.observations, stats.parse_errors) == (1, 1, 0)
    assert stats.patterns == Counter({"ufw-block": 1})  # the line after it is not lost
    end = HUGE_LINE_BYTES + len(UFW_LINE) + 2
    assert sink.positions[("ufw", str(huge_line_file))].offset == end  # read to the end


async def test_a_100_mb_line_is_skipped_by_ingest_in_bounded_memory(huge_line_file: Path) -> None:
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        stats = await ingest(make_watcher("ufw"), [str(huge_line_file)], MemorySink())
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    TRIED["ingest:100MB-line"] += 1
    MEASURED["ingest peak"] = f"{peak / 2**20:.1f} MiB"
    assert peak < MEMORY_BOUND, f"peak allocation {peak / 2**20:.1f} MiB"
    assert (stats.oversized, stats.observations) == (1, 1)


RSS_SCRIPT = """
import asyncio, sys
from dtim.watchers.base import MemorySink, WatcherContext
from dtim.watchers.ingest import ingest
from dtim.watchers.plugins import make_plugin_manager, registered_watchers
specs = registered_watchers(make_plugin_manager(load_entrypoints=False))
watcher = specs["ufw"].create(WatcherContext())
stats = asyncio.run(ingest(watcher, [sys.argv[1]], MemorySink()))
print(stats.oversized, stats.observations)
"""


def peak_rss_kib(path: Path) -> tuple[int, str]:
    """Peak resident memory (KiB) of a fresh process ingesting ``path``, and its output."""
    child = subprocess.Popen(  # our own interpreter and script
        [sys.executable, "-c", RSS_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    with child.stdout:
        output = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0
    return usage.ru_maxrss, output.strip()


@pytest.mark.slow
def test_a_100_mb_line_keeps_process_memory_flat(huge_line_file: Path, tmp_path: Path) -> None:
    small = tmp_path / "ufw.log"
    small.write_text(UFW_LINE + "\n")
    base, base_output = peak_rss_kib(small)
    huge, huge_output = peak_rss_kib(huge_line_file)
    TRIED["process:100MB-line"] += 1
    MEASURED["process RSS growth"] = f"{(huge - base) / 1024:.1f} MiB"
    assert (base_output, huge_output) == ("0 1", "1 1")
    assert huge - base < 32 * 1024, f"RSS grew by {(huge - base) / 1024:.1f} MiB"
