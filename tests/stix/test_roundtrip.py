"""Export then import gives the same indicators; malformed input is refused whole."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from dtim.errors import StixError
from dtim.model import Indicator, Tlp
from dtim.stix.bundle import BundleWriter, ImportReport, import_indicators, read_objects
from dtim.stix.feeds.csv import CsvWriter, read_csv
from dtim.stix.feeds.json import JsonWriter
from dtim.stix.feeds.misp import MispFeedWriter, read_misp
from dtim.stix.feeds.txt import TextWriter
from tests.stix.conftest import NOW, SAMPLES, sample_indicator, shared_form, validate


def _indicators() -> list[Indicator]:
    tlps = list(Tlp)
    return [sample_indicator(v, t, tlp=tlps[i % len(tlps)]) for i, (v, t) in enumerate(SAMPLES)]


def _key(indicator: Indicator) -> tuple[object, ...]:
    return (
        indicator.id,
        indicator.type,
        indicator.value,
        indicator.tlp,
        indicator.confidence,
        indicator.tags,
        indicator.first_seen,
        indicator.last_seen,
        dict(indicator.custom_fields),
    )


def test_stix_round_trip_gives_the_same_indicators() -> None:
    originals = _indicators()
    out = io.BytesIO()
    writer = BundleWriter(out, stamp=NOW)
    for indicator in originals:
        writer.write(shared_form(indicator, "open"))
    writer.close()
    assert validate(orjson.loads(out.getvalue())) == []
    report = ImportReport()
    back = list(import_indicators(read_objects(io.BytesIO(out.getvalue())), report, now=NOW))
    assert report.skipped == []
    assert sorted(map(_key, back), key=str) == sorted(map(_key, originals), key=str)


def test_stix_reader_handles_other_layouts_too() -> None:
    originals = _indicators()[:3]
    out = io.BytesIO()
    writer = BundleWriter(out, stamp=NOW)
    for indicator in originals:
        writer.write(shared_form(indicator, "open"))
    writer.close()
    pretty = orjson.dumps(orjson.loads(out.getvalue()), option=orjson.OPT_INDENT_2)
    back = list(import_indicators(read_objects(io.BytesIO(pretty)), ImportReport(), now=NOW))
    assert sorted(map(_key, back), key=str) == sorted(map(_key, originals), key=str)


def test_csv_round_trip_gives_the_same_indicators() -> None:
    originals = _indicators()
    out = io.BytesIO()
    writer = CsvWriter(out)
    for indicator in originals:
        writer.write(shared_form(indicator, "open"))
    writer.close()
    report = ImportReport()
    back = list(read_csv(io.BytesIO(out.getvalue()), report, now=NOW))
    assert report.skipped == []
    assert sorted(map(_key, back), key=str) == sorted(map(_key, originals), key=str)


def test_misp_feed_round_trip_and_layout(tmp_path: Path) -> None:
    originals = _indicators()
    writer = MispFeedWriter(tmp_path / "feed", stamp=NOW, event_size=3)
    for indicator in originals:
        writer.write(shared_form(indicator, "open"))
    writer.close()
    manifest = orjson.loads((tmp_path / "feed" / "manifest.json").read_bytes())
    events = sorted(p.stem for p in (tmp_path / "feed").glob("*.json") if p.name != "manifest.json")
    assert sorted(manifest) == events
    hashes = (tmp_path / "feed" / "hashes.csv").read_text().splitlines()
    assert len(hashes) == len(originals)
    assert all(line.split(",")[1] in manifest for line in hashes)
    for name in events:
        event = orjson.loads((tmp_path / "feed" / f"{name}.json").read_bytes())["Event"]
        assert event["Orgc"]["name"] == "DTIM"
        assert len(event["Attribute"]) <= 3
        assert event["Tag"][0]["name"].startswith("tlp:")
    report = ImportReport()
    back = list(read_misp(tmp_path / "feed", report, now=NOW))
    assert report.skipped == []
    # MISP has no custom fields: everything else survives.
    assert sorted((k[:-1] for k in map(_key, back)), key=str) == sorted(
        (k[:-1] for k in map(_key, originals)), key=str
    )


def test_txt_and_json_writers() -> None:
    originals = _indicators()[:3]
    text, doc = io.BytesIO(), io.BytesIO()
    txt, js = TextWriter(text), JsonWriter(doc)
    for indicator in originals:
        txt.write(shared_form(indicator, "strict"))
        js.write(shared_form(indicator, "strict"))
    txt.close()
    js.close()
    assert text.getvalue().decode().splitlines() == [i.value for i in originals]
    assert [d["value"] for d in orjson.loads(doc.getvalue())] == [i.value for i in originals]
    empty = io.BytesIO()
    JsonWriter(empty).close()
    assert orjson.loads(empty.getvalue()) == []


def test_import_skips_what_it_cannot_take_with_reasons() -> None:
    bundle = {
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": [
            {
                "type": "indicator",
                "id": "indicator--1",
                "pattern": "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '5.6.7.8']",
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
            },
            {
                "type": "indicator",
                "id": "indicator--2",
                "pattern": "rule x {}",
                "pattern_type": "yara",
                "valid_from": "2026-01-01T00:00:00Z",
            },
            {
                "type": "indicator",
                "id": "indicator--3",
                "pattern": "[ipv4-addr:value = '999.1.1.1']",
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
            },
            {
                "type": "indicator",
                "id": "indicator--4",
                "pattern": "[domain-name:value = 'old.example']",
                "pattern_type": "stix",
                "valid_from": "2025-01-01T00:00:00Z",
                "valid_until": "2025-02-01T00:00:00Z",
            },
            {
                "type": "indicator",
                "id": "indicator--5",
                "pattern": "[domain-name:value = 'ok.example']",
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
                "revoked": True,
            },
            {
                "type": "indicator",
                "id": "indicator--6",
                "pattern": "[domain-name:value = 'fine.example']",
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
            },
            {"type": "malware", "id": "malware--1", "name": "x", "is_family": False},
        ],
    }
    report = ImportReport()
    back = list(import_indicators(read_objects(io.BytesIO(orjson.dumps(bundle))), report, now=NOW))
    assert [i.value for i in back] == ["fine.example"]
    reasons = {s.object_id: s.reason for s in report.skipped}
    assert "FOLLOWEDBY" in reasons["indicator--1"]
    assert "yara" in reasons["indicator--2"]
    assert "IPv4" in reasons["indicator--3"]
    assert "expired" in reasons["indicator--4"]
    assert reasons["indicator--5"] == "revoked"
    assert report.ignored == {"malware": 1}


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"type": "report", "objects": []}',
        b'{"type": "bundle", "objects": {}}',
        b'{"type": "bundle", "objects": [{"id": "x--1"}]}',
        b'{"type":"bundle","id":"bundle--1","objects":[\n{"type": "indicator",\n]}',
    ],
)
def test_malformed_bundles_are_refused(raw: bytes) -> None:
    with pytest.raises(StixError):
        list(import_indicators(read_objects(io.BytesIO(raw)), ImportReport(), now=NOW))


def test_csv_with_foreign_header_bare_values_and_bad_rows() -> None:
    report = ImportReport()
    text = b"# blocklist\nValue,TLP\nevil.example,amber\n203.0.113.5,\nnot a value,green\n"
    back = list(read_csv(io.BytesIO(text), report, now=NOW))
    assert [(i.value, i.tlp) for i in back] == [
        ("evil.example", Tlp.AMBER),
        ("203.0.113.5", Tlp.GREEN),
    ]
    assert report.skipped[0].object_id == "line 5"
    bare = list(read_csv(io.BytesIO(b"203.0.113.5\nevil.example\n"), ImportReport(), now=NOW))
    assert [i.type for i in bare] == ["ipv4", "domain"]
