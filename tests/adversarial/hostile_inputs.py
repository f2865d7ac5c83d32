"""Hypothesis strategies of hostile input for the parser fuzz tests.

Each strategy mixes values the parsers know (field names, patterns, sample log
lines, structured-field snippets) with arbitrary ones, so that generated input
gets past the first checks and reaches the deeper code paths.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

from dtim.config.settings import section_types
from dtim.watchers.base import WatcherSpec
from dtim.watchers.tail import MAX_LINE_BYTES

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.text(max_size=24),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
NESTED = ["[" * 100_000, '{"a":' * 50_000, "[" * 5_000 + "]" * 5_000]
"""JSON nested deeper than Python's recursion limit: each must be a clean error."""


def json_text(value: object) -> str:
    """JSON as a foreign producer might write it (``NaN``/``Infinity`` included)."""
    return json.dumps(value, allow_nan=True)


CHUNKS = [
    " ",
    "a",
    "0",
    "1.",
    ".",
    ":",
    "::",
    "/",
    "//",
    "../",
    "%",
    "%2e",
    "=",
    "a=b ",
    "SRC=",
    '"',
    "'",
    "\\",
    "\\x",
    "\t",
    "-",
    "[",
    "{",
    '{"a":',
    ",",
    ";",
    "(",
    ")",
    "<",
    "GET /",
    " FOUND",
    ": ",
    "1.2.3.4 ",
    "[client 1.2.3.4] ",
    "Ban ",
    "\u00e9",
    "\u2028",
]


def grow(seed: str, at: int, chunk: str, times: int) -> str:
    """``seed`` with ``chunk`` repeated ``times`` times at ``at``, cut to the tail's cap."""
    cut = min(at, len(seed))
    return (seed[:cut] + chunk * times + seed[cut:])[:MAX_LINE_BYTES]


def long_lines(seeds: list[str]) -> st.SearchStrategy[str]:
    return st.builds(
        grow,
        st.sampled_from(seeds),
        st.integers(0, 600),
        st.one_of(st.sampled_from(CHUNKS), st.text(min_size=1, max_size=6)),
        st.integers(1_000, MAX_LINE_BYTES),
    )


ZEEK_FIELDS = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "note",
    "msg",
    "src",
    "dst",
    "fuid",
    "seen.indicator",
    "seen.indicator_type",
    "seen.where",
    "sources",
    "conn_state",
    "tx_hosts",
    "rx_hosts",
    "md5",
    "sha1",
    "sha256",
    "filename",
    "mime_type",
    "_path",
]
ZEEK_VALUES = [
    "-",
    "(empty)",
    "1732752000.123456",
    "2026-11-28T00:00:00Z",
    "1e400",
    "nan",
    "-1",
    "\u0661\u0662",
    "45.9.20.11",
    "10.0.0.5",
    "2001:db8::1",
    "::",
    "999.1.1.1",
    "evil.example.com",
    "http://x/",
    "Scan::Port_Scan",
    "SSH::Password_Guessing",
    "TeamCymruMalwareHashRegistry::Match",
    "Intel::ADDR",
    "Intel::DOMAIN",
    "Intel::URL",
    "Intel::EMAIL",
    "Intel::FILE_HASH",
    "REJ",
    "F1",
    "a" * 32,
    "b" * 40,
    "c" * 64,
    "d" * 128,
    "x,y",
    "\\x41\\x2c",
    "\\x00",
    "a@b.c",
]
zeek_value = st.one_of(st.sampled_from(ZEEK_VALUES), st.text(max_size=30))
zeek_fields = st.lists(st.one_of(st.sampled_from(ZEEK_FIELDS), st.text(max_size=8)), max_size=14)


zeek_header = st.one_of(
    st.builds(lambda f: "#fields\t" + "\t".join(f), zeek_fields),
    st.sampled_from(["#separator \\x09", "#separator \\x2c", "#separator ", "#separator \\x"]),
    st.builds(lambda v: "#path\t" + v, st.sampled_from(["notice", "intel", "conn", "files", "x"])),
    st.builds(lambda v: "#unset_field\t" + v, zeek_value),
    st.builds(lambda v: "#empty_field\t" + v, zeek_value),
    st.builds(lambda v: "#set_separator\t" + v, zeek_value),
    st.text(max_size=20).map(lambda t: "#" + t),
)
zeek_tsv_line = st.builds(
    lambda values, sep: sep.join(values),
    st.lists(zeek_value, max_size=26),
    st.sampled_from(["\t", ",", " "]),
)
zeek_json_line = st.builds(
    json_text,
    st.dictionaries(st.sampled_from(ZEEK_FIELDS), st.one_of(zeek_value, json_value), max_size=12),
)
zeek_file = st.sampled_from(
    ["notice.log", "intel.log", "conn.log", "files.log", "conn.2026-11-28-00-00-00.log", "x.log"]
)


eve_address = st.one_of(
    st.sampled_from(["45.9.20.11", "10.0.0.5", "2001:db8::1", "0.0.0.0", "300.1.1.1", ""]),
    json_value,
)
eve_name = st.one_of(st.sampled_from(["evil.example.com", "x", "..", "a" * 300]), json_value)
eve_record = st.fixed_dictionaries(
    {
        "event_type": st.one_of(
            st.sampled_from(["alert", "fileinfo", "dns", "http", "tls"]), json_value
        )
    },
    optional={
        "timestamp": st.one_of(
            st.sampled_from(["2026-11-28T00:00:00.000000+0000", "2026-13-40T99:99:99", ""]),
            json_value,
        ),
        "src_ip": eve_address,
        "dest_ip": eve_address,
        "flow_id": json_value,
        "alert": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "severity": json_value,
                    "signature": st.one_of(st.text(max_size=40), json_value),
                    "category": st.one_of(
                        st.sampled_from(["Attempted Administrator Privilege Gain"]), json_value
                    ),
                    "signature_id": json_value,
                },
            ),
            json_value,
        ),
        "http": st.one_of(st.fixed_dictionaries({"hostname": eve_name}), json_value),
        "tls": st.one_of(st.fixed_dictionaries({"sni": eve_name}), json_value),
        "dns": st.one_of(
            st.fixed_dictionaries(
                {
                    "rrname": eve_name,
                    "queries": st.lists(st.fixed_dictionaries({"rrname": eve_name}), max_size=3),
                }
            ),
            json_value,
        ),
        "fileinfo": st.one_of(
            st.fixed_dictionaries({"sha256": st.one_of(st.just("e" * 64), json_value)}), json_value
        ),
        "files": st.one_of(
            st.lists(
                st.fixed_dictionaries({"sha256": st.one_of(st.just("f" * 64), json_value)}),
                max_size=3,
            ),
            json_value,
        ),
    },
)


RULE_KEYS = ["threshold", "window", "cooldown", "confidence", "enabled", "tags", "bucket", "x"]


def settings_tables(spec: WatcherSpec) -> st.SearchStrategy[dict[str, object]]:
    rule = st.dictionaries(
        st.sampled_from(RULE_KEYS),
        st.one_of(
            json_value, st.sampled_from(["10m", "1h", "0s", "leaky", "window", "-5s", "1e9d"])
        ),
        max_size=4,
    )
    keys = [r.name for r in spec.rules] + list(spec.options) + ["unknown"]
    return st.dictionaries(st.sampled_from(keys), st.one_of(rule, json_value), max_size=4)


STAT_NAMES = ["malicious", "suspicious", "harmless", "undetected"]
vt_stats = st.dictionaries(
    st.sampled_from(STAT_NAMES),
    st.one_of(
        st.integers(-5, 100), st.sampled_from([1e400, -1e400, 1e300, "7", "x", True]), json_value
    ),
    max_size=4,
)
vt_body = st.one_of(
    st.binary(max_size=64),
    json_value.map(lambda v: json_text(v).encode()),
    vt_stats.map(
        lambda s: json_text({"data": {"attributes": {"last_analysis_stats": s}}}).encode()
    ),
    st.sampled_from(NESTED).map(str.encode),
)
vt_reply = st.tuples(st.sampled_from([200, 200, 200, 404, 400, 401, 418]), vt_body)


SECTION_FIELDS = {name: list(cls.__dataclass_fields__) for name, cls in section_types().items()}
KEYS = [(section, key) for section, names in SECTION_FIELDS.items() for key in names]
TEXT_VALUES = [
    "nan",
    "inf",
    "-inf",
    "1e999",
    "-1",
    "0",
    "65536",
    "99999999999999999999",
    "true",
    "off",
    "[",
    "[1, 2]",
    '["a", {"b": 1}]',
    "[" * 5_000,
    "a,b",
    "",
    " ",
    "sqlite:///x.db",
    "strict",
    "beginning",
    "hour",
    "\u0661",
]


def toml_value(value: object) -> str:
    """TOML for a generated value (floats include nan and inf, which TOML allows)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_document(tables: dict[str, dict[str, object]]) -> str:
    return "\n".join(
        f"[{section}]\n" + "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items())
        for section, table in tables.items()
    )


toml_leaf = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.text(max_size=16),
    st.sampled_from(TEXT_VALUES[:24]),
)
toml_any = st.recursive(
    toml_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
section_table = st.sampled_from([*sorted(SECTION_FIELDS), "nonsense"]).flatmap(
    lambda section: st.tuples(
        st.just(section),
        st.dictionaries(
            st.sampled_from([*SECTION_FIELDS.get(section, []), "unknown", "ufw", "nginx_access"]),
            toml_any,
            max_size=5,
        ),
    )
)
toml_text = st.one_of(
    st.lists(section_table, max_size=5).map(lambda tables: toml_document(dict(tables))),
    st.text(max_size=200),
    st.builds(lambda depth: "a = " + "[" * depth + "]" * depth, st.integers(900, 20_000)),
    st.builds(lambda depth: "a = " + "{b = " * depth + "1" + "}" * depth, st.integers(900, 5_000)),
)
text_setting = st.one_of(st.sampled_from(TEXT_VALUES), st.text(max_size=24))
config_case = st.tuples(
    st.one_of(toml_text.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=64)),
    st.dictionaries(
        st.sampled_from(
            [f"DTIM__{s.upper()}__{k.upper()}" for s, k in KEYS] + ["DTIM__X", "DTIM__A__B__C"]
        ),
        text_setting,
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from([f"{s}.{k}" for s, k in KEYS] + ["x", "a.b"]), text_setting, max_size=4
    ),
)


PATTERNS = [
    "[ipv4-addr:value = '45.9.20.11']",
    "[domain-name:value = 'evil.example.com'] OR [url:value = 'http://evil.example.com/x']",
    "[file:hashes.'SHA-256' = '" + "e" * 64 + "']",
    "[ipv4-addr:value ISSUBSET '45.9.20.0/24']",
    "[x-dtim-thing:value = 'v']",
    "[ipv4-addr:value = '1.2.3.4'] AND [ipv4-addr:value = '5.6.7.8']",
    "[email-message:from_ref.value = 'a@b.c']",
    "(" * 300 + "[ipv4-addr:value = '1.2.3.4']" + ")" * 300,
]
stix_indicator = st.fixed_dictionaries(
    {"type": st.just("indicator"), "id": st.just("indicator--1")},
    optional={
        "pattern": st.one_of(st.sampled_from(PATTERNS), st.text(max_size=60), json_value),
        "pattern_type": st.one_of(st.just("stix"), json_value),
        "valid_from": st.one_of(st.just("2026-01-01T00:00:00Z"), json_value),
        "valid_until": st.one_of(st.just("2025-01-01T00:00:00Z"), json_value),
        "created": json_value,
        "modified": json_value,
        "labels": json_value,
        "indicator_types": json_value,
        "confidence": json_value,
        "revoked": json_value,
        "object_marking_refs": st.one_of(
            st.lists(
                st.sampled_from(
                    ["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "m--1"]
                )
            ),
            json_value,
        ),
        "extensions": json_value,
    },
)
stix_object = st.one_of(
    stix_indicator,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["marking-definition", "identity", "malware"]),
            "id": st.just("m--1"),
        },
        optional={
            "definition_type": st.just("tlp"),
            "definition": json_value,
            "extensions": json_value,
        },
    ),
    json_value,
)
STREAM_HEAD = '{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000000","objects":['
stix_file = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda objects: json_text(
            {"type": "bundle", "id": "bundle--1", "objects": objects}
        ).encode(),
        st.lists(stix_object, max_size=4),
    ),
    st.builds(
        lambda objects, end: (
            STREAM_HEAD + "\n" + ",\n".join(json_text(o) for o in objects) + end
        ).encode(),
        st.lists(st.one_of(stix_object, st.sampled_from(NESTED)), max_size=4),
        st.sampled_from(["\n]}\n", "", "\n]", "\n]}\n{}"]),
    ),
    json_value.map(lambda v: json_text(v).encode()),
)
misp_tag = st.fixed_dictionaries(
    {
        "name": st.one_of(
            st.sampled_from(
                [
                    "tlp:red",
                    "tlp:amber+strict",
                    "tlp:nonsense",
                    'dtim:confidence="90"',
                    'dtim:confidence="x"',
                    'dtim:confidence="' + "9" * 5000 + '"',
                    "malware",
                ]
            ),
            json_value,
        )
    }
)
misp_attribute = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(
            st.sampled_from(
                ["ip-dst", "domain", "md5", "url", "ip-src|port", "filename|sha256", "x"]
            ),
            json_value,
        ),
        "value": st.one_of(
            st.sampled_from(
                ["45.9.20.11", "45.9.20.11|80", "a.exe|" + "e" * 64, "evil.example.com"]
            ),
            json_value,
        ),
        "to_ids": json_value,
        "deleted": json_value,
        "timestamp": st.one_of(st.integers().map(str), json_value),
        "first_seen": json_value,
        "last_seen": json_value,
        "uuid": json_value,
        "Tag": st.one_of(st.lists(misp_tag, max_size=3), json_value),
    },
)
misp_event = st.fixed_dictionaries(
    {},
    optional={
        "Attribute": st.one_of(st.lists(misp_attribute, max_size=4), json_value),
        "Object": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "Attribute": st.one_of(st.lists(misp_attribute, max_size=3), json_value)
                    },
                ),
                max_size=2,
            ),
            json_value,
        ),
        "Tag": st.one_of(st.lists(misp_tag, max_size=3), json_value),
    },
)
misp_file = st.one_of(
    st.binary(max_size=64),
    misp_event.map(lambda event: json_text({"Event": event}).encode()),
    json_value.map(lambda v: json_text(v).encode()),
)
CSV_COLUMNS = [
    "id",
    "type",
    "value",
    "tlp",
    "confidence",
    "first_seen",
    "last_seen",
    "valid_until",
    "tags",
    "sightings",
    "custom_fields",
    "other",
]
csv_cell = st.one_of(
    st.sampled_from(
        [
            "45.9.20.11",
            "ipv4",
            "domain",
            "red",
            "amber",
            "90",
            "101",
            "-1",
            "x",
            "2026-01-01T00:00:00Z",
            "not a time",
            '{"a": 1}',
            "[1]",
            "{",
            "a;b",
            "#",
        ]
    ),
    st.text(max_size=20),
)


def csv_quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\n\r') else cell


csv_file = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda header, rows: "\n".join(",".join(map(csv_quote, r)) for r in [header, *rows]).encode(
            "utf-8", "surrogatepass"
        ),
        st.lists(st.sampled_from(CSV_COLUMNS), min_size=1, max_size=6),
        st.lists(st.lists(csv_cell, max_size=7), max_size=5),
    ),
    st.text(max_size=120).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(lambda size: b'value\n"' + b"a" * size + b'"\n', st.integers(130_000, 140_000)),
)


BODY = b'{"indicators": []}'
"""The body of every signed request and response the signature fuzzing starts from."""
PATH = "/api/v1/indicators/gossip"
SF_SNIPPETS = [
    "dtim=",
    "(",
    ")",
    '"@method"',
    '"@path"',
    '"@query"',
    '"content-digest"',
    '"dtim-recipient"',
    '"signature";req;key="dtim"',
    '"@status"',
    '"@authority"',
    '"@target-uri"',
    '"Foo"',
    ";created=",
    ";expires=",
    ";nonce=",
    ";keyid=",
    ';alg="ed25519"',
    ";alg=rsa",
    ';tag="dtim-request"',
    ';tag="dtim-response"',
    "1767268800",
    "-1",
    "999999999999999",
    "9999999999999999",
    "1.5",
    '"abcdefgh"',
    ":" + "A" * 86 + "==:",
    ":AAAA:",
    "?1",
    "?0",
    "tok",
    "*",
    ", ",
    ",",
    ";",
    "=",
    " ",
    "\t",
    "\\",
    '"',
    ":",
    "\u00e9",
    "\x7f",
]
sf_text = st.lists(st.one_of(st.sampled_from(SF_SNIPPETS), st.text(max_size=6)), max_size=14).map(
    "".join
)


def mutate(value: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply (position, length, replacement) edits to ``value``."""
    for at, length, replacement in edits:
        cut = at % (len(value) + 1)
        value = value[:cut] + replacement + value[cut + length :]
    return value


edits = st.lists(
    st.tuples(
        st.integers(0, 400),
        st.integers(0, 4),
        st.one_of(st.sampled_from(SF_SNIPPETS), st.text(max_size=3)),
    ),
    min_size=1,
    max_size=3,
)
HEADER_NAMES = ["signature-input", "signature", "content-digest", "dtim-recipient"]
header_change = st.one_of(
    st.tuples(st.just("mutate"), st.sampled_from(HEADER_NAMES), edits),
    st.tuples(st.just("replace"), st.sampled_from(HEADER_NAMES), sf_text),
    st.tuples(st.just("drop"), st.sampled_from(HEADER_NAMES), st.just("")),
    st.tuples(st.just("add"), st.sampled_from(HEADER_NAMES), sf_text),
)
request_case = st.tuples(
    st.lists(header_change, max_size=4),
    st.sampled_from([BODY, b"", b"x" * 10]),
    st.sampled_from([PATH, PATH + "/", "/"]),
    st.integers(-400, 400),
)


def change_headers(
    headers: list[tuple[str, str]], changes: list[tuple[str, str, Any]]
) -> list[tuple[str, str]]:
    out = list(headers)
    for kind, name, arg in changes:
        if kind == "mutate":
            out = [(k, mutate(v, arg) if k == name else v) for k, v in out]
        elif kind == "replace":
            out = [(k, arg if k == name else v) for k, v in out]
        elif kind == "drop":
            out = [(k, v) for k, v in out if k != name]
        else:
            out.append((name, arg))
    return out


latin1 = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=40)
guard_headers = st.lists(
    st.tuples(
        st.one_of(st.sampled_from([*HEADER_NAMES, "content-length", "host"]), latin1),
        st.one_of(
            sf_text, latin1, st.sampled_from(["\u00b2", "-1", " 5 ", "99999999999999999999", "1_0"])
        ),
    ),
    max_size=6,
)
guard_case = st.tuples(guard_headers, st.lists(st.binary(max_size=64), max_size=3), latin1)
