"""Encrypted audit log: daily files, rotation, torn and damaged records."""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dtim.crypto.auditlog import MAGIC, AuditEvent, AuditLog, log_file
from dtim.crypto.keyring import Keyring
from dtim.errors import CryptoError
from dtim.model.clock import FakeClock

START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
DAY = START.date()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.create(tmp_path / "keys", now=START)


def make_log(tmp_path: Path, keyring: Keyring, clock: FakeClock) -> AuditLog:
    return AuditLog(tmp_path / "data" / "logs", keyring, clock)


def test_append_and_read_back(tmp_path: Path, keyring: Keyring, clock: FakeClock) -> None:
    log = make_log(tmp_path, keyring, clock)
    log.append({"event": AuditEvent.NODE_STARTED, "version": "0.1.0"})
    clock.advance(5)
    log.append({"event": "peer_approved", "peer_id": "ab" * 32})
    log.close()
    records = log.read(DAY)
    assert [r["event"] for r in records] == ["node_started", "peer_approved"]
    assert records[0]["at"] == "2026-03-01T10:00:00.000Z"
    assert records[1]["peer_id"] == "ab" * 32
    path = log_file(log.directory, DAY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"peer_approved" not in path.read_bytes()
    assert log.read(date(2020, 1, 1)) == []


def test_one_file_per_utc_day(tmp_path: Path, keyring: Keyring, clock: FakeClock) -> None:
    log = make_log(tmp_path, keyring, clock)
    log.append({"event": "node_started"})
    clock.advance(timedelta(days=1).total_seconds())
    log.append({"event": "node_stopped"})
    assert log.days() == [DAY, DAY + timedelta(days=1)]
    assert [r["event"] for r in log.read(DAY + timedelta(days=1))] == ["node_stopped"]


def test_record_cannot_be_moved_to_another_day(
    tmp_path: Path, keyring: Keyring, clock: FakeClock
) -> None:
    log = make_log(tmp_path, keyring, clock)
    log.append({"event": "node_started"})
    other = log_file(log.directory, DAY + timedelta(days=1))
    other.write_bytes(log_file(log.directory, DAY).read_bytes())
    assert log.scan(DAY + timedelta(days=1)).records == ()


def test_logs_across_three_rotations_are_all_readable(
    tmp_path: Path, keyring: Keyring, clock: FakeClock
) -> None:
    log = make_log(tmp_path, keyring, clock)
    for generation in range(4):
        if generation:
            keyring.rotate(now=clock.now())
            log.append({"event": "key_rotated", "kind": "logs", "generation": generation})
        log.append({"event": "indicators_shared", "ids": [f"i{generation}"], "peer_ids": ["p"]})
        clock.advance(60)
    log.close()
    fresh = AuditLog(log.directory, Keyring.load(tmp_path / "keys"))
    records = fresh.read(DAY)
    assert [r.get("generation") for r in records if r["event"] == "key_rotated"] == [1, 2, 3]
    assert [r["ids"] for r in records if r["event"] == "indicators_shared"] == [
        ["i0"],
        ["i1"],
        ["i2"],
        ["i3"],
    ]
    assert len(set(keyring.key_ids)) == 4


@pytest.mark.parametrize("cut", [1, 3, 4, 7, 8, 20, -1])
def test_truncated_mid_record_keeps_every_complete_record(
    tmp_path: Path, keyring: Keyring, clock: FakeClock, cut: int
) -> None:
    log = make_log(tmp_path, keyring, clock)
    for n in range(5):
        log.append({"event": "request_rejected", "n": n})
    log.close()
    path = log_file(log.directory, DAY)
    data = path.read_bytes()
    last = data.rfind(MAGIC)
    path.write_bytes(data[: last + cut] if cut > 0 else data[:cut])
    day = log.scan(DAY)
    assert [r["n"] for r in day.records] == [0, 1, 2, 3]
    assert day.torn_tail
    assert day.damaged == 1
    # Appending after the crash still works, and the torn record does not hide it.
    log.append({"event": "node_started", "n": 5})
    assert [r["n"] for r in log.read(DAY)] == [0, 1, 2, 3, 5]


def test_a_torn_record_completed_by_the_next_one_does_not_hide_it(
    tmp_path: Path, keyring: Keyring, clock: FakeClock
) -> None:
    """The last byte of record 4 is lost in a crash; record 5, appended after restart, starts
    with that very byte, so record 4 read across the boundary authenticates. Record 5 must
    still be read (found by trying until a tag ends with the magic's first byte, ~1 in 256)."""
    for attempt in range(5000):
        log = make_log(tmp_path / str(attempt), keyring, clock)
        for n in range(5):
            log.append({"event": "request_rejected", "n": n})
        log.close()
        path = log_file(log.directory, DAY)
        data = path.read_bytes()
        if data[-1] == MAGIC[0]:
            break
    else:
        pytest.fail("no tag ended with the magic's first byte in 5000 tries")
    path.write_bytes(data[:-1])
    log.append({"event": "node_started", "n": 5})
    day = log.scan(DAY)
    assert [r["n"] for r in day.records] == [0, 1, 2, 3, 5]
    assert day.damaged == 1


def test_damaged_record_in_the_middle_is_skipped(
    tmp_path: Path, keyring: Keyring, clock: FakeClock
) -> None:
    log = make_log(tmp_path, keyring, clock)
    for n in range(3):
        log.append({"event": "node_started", "n": n})
    path = log_file(log.directory, DAY)
    data = bytearray(path.read_bytes())
    second = data.find(MAGIC, 1)
    data[second + 20] ^= 0xFF  # inside record 1's sealed bytes
    path.write_bytes(bytes(data))
    day = log.scan(DAY)
    assert [r["n"] for r in day.records] == [0, 2]
    assert day.damaged == 1
    assert not day.torn_tail
    # A corrupted length field too.
    data = bytearray(path.read_bytes())
    data[second + 4 : second + 8] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    assert [r["n"] for r in log.read(DAY)] == [0, 2]


def test_bad_events_are_refused(tmp_path: Path, keyring: Keyring, clock: FakeClock) -> None:
    log = make_log(tmp_path, keyring, clock)
    with pytest.raises(CryptoError, match="'event'"):
        log.append({"peer_id": "x"})
    with pytest.raises(CryptoError, match="not JSON"):
        log.append({"event": "x", "bad": object()})  # type: ignore[dict-item]  # on purpose


def test_unreadable_file_is_an_error(tmp_path: Path, keyring: Keyring, clock: FakeClock) -> None:
    log = make_log(tmp_path, keyring, clock)
    log.append({"event": "node_started"})
    path = log_file(log.directory, DAY)
    os.chmod(path, 0)
    if os.access(path, os.R_OK):  # root reads anything; make it a directory instead
        path.unlink()
        path.mkdir()
    with pytest.raises(CryptoError, match="cannot read"):
        log.read(DAY)
