from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from dtim.errors import ValidationError
from dtim.model import Evidence, Sighting, make_indicator
from dtim.sensor.client import request_body
from dtim.sensor.queue import QueuedBatch
from dtim.sensor.tokens import new_token, secret_matches, split_token, valid_name
from dtim.sensor.wire import MAX_BATCHES, decode_request, sighting_json

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _sighting() -> Sighting:
    return Sighting(
        make_indicator("45.13.7.9", now=NOW, confidence=70, tags=["scanner"], sources=["ufw"]),
        "ufw",
        "ufw-port-scan",
        NOW,
        count=12,
        evidence=Evidence(lines=("line 1",), hosts=("gw",), details={"ports": 12}),
    )


def test_a_sighting_survives_the_wire() -> None:
    sent = _sighting()
    [batch] = decode_request(
        {"batches": [{"batch_id": "a" * 32, "sightings": [sighting_json(sent)]}]}
    )
    assert batch.batch_id == "a" * 32
    assert batch.sightings == (sent,)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "body"),
        ({"batches": []}, "batches"),
        ({"batches": [{}] * (MAX_BATCHES + 1)}, "batches"),
        ({"batches": [{"batch_id": "x"}]}, "batches[0].batch_id"),
        ({"batches": [{"batch_id": "a" * 32, "sightings": {}}]}, "batches[0].sightings"),
        (
            {
                "batches": [
                    {"batch_id": "a" * 32, "sightings": []},
                    {"batch_id": "a" * 32, "sightings": []},
                ]
            },
            "batches[1].batch_id",
        ),
        (
            {
                "batches": [
                    {
                        "batch_id": "a" * 32,
                        "sightings": [
                            {
                                "indicator": {
                                    "value": "not an ip",
                                    "type": "ipv4",
                                    "created": "2026-03-01T12:00:00Z",
                                }
                            }
                        ],
                    }
                ]
            },
            "batches[0].sightings[0].indicator.value",
        ),
    ],
)
def test_bad_requests_name_the_field(document: object, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode_request(document)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": True}, "count"),
        ({"source": ""}, "source"),
        ({"rule": "r" * 129}, "rule"),
        ({"source": "uf\x00w"}, "source"),  # PostgreSQL text cannot hold a NUL
        ({"rule": "port\x00scan"}, "rule"),
        ({"observed_at": "yesterday"}, "observed_at"),
        ({"observed_at": 5}, "observed_at"),
        ({"evidence": {"lines": [1]}}, "evidence.lines"),
        ({"evidence": {"details": []}}, "evidence.details"),
        ({"evidence": []}, "evidence"),
        ({"indicator": None}, "indicator"),
    ],
)
def test_bad_sightings_name_the_field(change: dict[str, object], field: str) -> None:
    raw = {**sighting_json(_sighting()), **change}
    with pytest.raises(ValidationError) as caught:
        decode_request({"batches": [{"batch_id": "b" * 32, "sightings": [raw]}]})
    assert caught.value.field == f"batches[0].sightings[0].{field}"


def test_tokens_split_and_match_in_constant_time() -> None:
    made = new_token()
    parts = split_token(made.token)
    assert parts is not None
    assert parts[0] == made.token_id
    assert secret_matches(parts[1], made.secret_hash)
    assert not secret_matches(parts[1] + "x", made.secret_hash)
    assert not secret_matches(parts[1], None)
    for bad in ("", "dtims_", "dtims_zz_secretsecretsecret", "other_0123456789abcdef_" + "s" * 20):
        assert split_token(bad) is None
    assert valid_name("dmz-web.1")
    assert not valid_name("-x")
    assert not valid_name("a b")


def test_a_batch_says_when_it_was_buffered() -> None:
    raw = sighting_json(_sighting())
    [batch] = decode_request(
        {"batches": [{"batch_id": "c" * 32, "created": "2026-03-01T12:00:05Z", "sightings": [raw]}]}
    )
    assert batch.created == datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    [legacy] = decode_request({"batches": [{"batch_id": "c" * 32, "sightings": [raw]}]})
    assert legacy.created is None
    for bad in ("soon", 5):
        with pytest.raises(ValidationError) as caught:
            decode_request(
                {"batches": [{"batch_id": "c" * 32, "created": bad, "sightings": [raw]}]}
            )
        assert caught.value.field == "batches[0].created"


def test_the_sensor_sends_when_each_batch_was_buffered() -> None:
    body = orjson.dumps([sighting_json(_sighting())])
    queued = QueuedBatch(1, "c" * 32, 1, body, datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp())
    [batch] = decode_request(orjson.loads(request_body([queued])))
    assert batch.created == datetime(2026, 3, 1, 12, tzinfo=UTC)
