"""JSON and text log lines: fields, extras, and no secrets."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from dtim.logformat import JsonFormatter, TextFormatter, configure_logging, scrub


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("dtim.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_json_line_has_the_fields_extras_and_masks_secrets() -> None:
    line = JsonFormatter().format(
        record(
            "peer %s refused:\nline two",
            "abc",
            peer="abc",
            count=3,
            api_key="vt-key-value",
            webhook_secret="hmac-value",
            url="postgresql://dtim:db-password@db.example/dtim",
        )
    )
    assert "\n" not in line
    document = json.loads(line)
    assert document["level"] == "warning"
    assert document["logger"] == "dtim.test"
    assert document["message"] == "peer abc refused:\nline two"
    assert document["time"].endswith("Z")
    assert document["peer"] == "abc"
    assert document["count"] == 3
    assert document["api_key"] == "***"
    assert document["webhook_secret"] == "***"
    assert document["url"] == "postgresql://***@db.example/dtim"
    for secret in ("vt-key-value", "hmac-value", "db-password"):
        assert secret not in line


def test_exceptions_are_one_field() -> None:
    try:
        raise ValueError("boom at https://u:p4ss@h.example/")
    except ValueError:
        made = record("failed")
        made.exc_info = sys.exc_info()
    document = json.loads(JsonFormatter().format(made))
    assert "ValueError" in document["exception"]
    assert "p4ss" not in document["exception"]


def test_text_lines_scrub_url_credentials_too() -> None:
    line = TextFormatter().format(record("cannot open %s", "postgresql://a:b@h/db"))
    assert "WARNING dtim.test: cannot open postgresql://***@h/db" in line
    assert scrub("https://h.example/path?x=1") == "https://h.example/path?x=1"


def test_bad_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml")
    with pytest.raises(ValueError, match="log level"):
        configure_logging("json", "chatty")
