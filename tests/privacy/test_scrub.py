"""Stripping: internal information in free text and in values."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dtim.privacy import Warninglists
from dtim.privacy.scrub import Scrubber, SensitiveTerms
from tests.privacy.conftest import MakeIndicator, indicator, policy


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(
        Warninglists.for_policy(policy()),
        SensitiveTerms(["Acme University", "acmeu", "jdoe", "fs01.lab"]),
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("seen by Acme University", "organisation name"),
        ("acmeu-soc", "organisation name"),
        ("ACMEU", "organisation name"),
        ("jdoe", "organisation name"),
        ("host fs01.lab down", "organisation name"),
        ("alice@mailbox.net", "e-mail"),
        ("alice@example.org", "internal host name"),
        ("root@fileserver", "e-mail"),
        ("/home/alice/.ssh/id_rsa", "file path"),
        ("lfi:/etc/passwd", "file path"),
        ("~/secrets/x", "file path"),
        ("../../etc/x", "file path"),
        ("dropped C:\\Users\\bob\\a.exe", "file path"),
        ("\\\\fileserver\\share", "file path"),
        ("%APPDATA%\\evil", "file path"),
        ("CORP\\bob", "file path"),
        ("Nov 28 10:00:01 web1 sshd[123]: Failed password", "log line"),
        ("2026-11-28T10:00 something", "log line"),
        ("kernel: [UFW BLOCK] SRC=1.2.3.4", "log line"),
        ('{"event_type": "alert"}', "log line"),
        ("a\tb", "log line"),
        ("ts 1732788000.123456", "log line"),
        ("user=alice", "user id"),
        ("uid: 1000", "user id"),
        ("S-1-5-21-1004336348", "user id"),
        ("mac 00:1a:2b:3c:4d:5e", "MAC"),
        ("node 123e4567-e89b-12d3-a456-426614174000", "UUID"),
        ("from 10.1.2.3", "private, reserved or own address"),
        ("from 81.2.69.44", "private, reserved or own address"),
        ("via fd00::1", "private, reserved or own address"),
        ("test-net 192.0.2.1", "private, reserved or own address"),
        ("seen on fileserver.corp", "internal host name"),
        ("vpn.acme-univ.org", "internal host name"),
        ("localhost:8080", "internal host name"),
        ("see http://intranet/wiki", "internal URL"),
        ("see https://10.0.0.1:8443/", "internal URL"),
        ("see https://[fe80::1]/", "internal URL"),
        ("see https://wiki.corp/x", "internal URL"),
        ("see https://u:p@github.com/", "internal URL"),
    ],
)
def test_text_leaks(scrubber: Scrubber, text: str, reason: str) -> None:
    found = scrubber.text_leak(text)
    assert found is not None
    assert reason in found, found


@pytest.mark.parametrize(
    "text",
    [
        "ssh-bruteforce",
        "cve-2021-44228",
        "tcp/22",
        "et scan suspicious inbound to mssql port 1433",
        "mirai",
        "acmebank-phishing",  # a different organisation: whole tokens only
        "c2 at 45.33.32.156",
        "resolver 8.8.8.8",
        "see https://attack.mitre.org/techniques/T1110/",
        "t1110.001",
        "fr",
        "ünïcödé tag",
        "n/a",
    ],
)
def test_text_passes(scrubber: Scrubber, text: str) -> None:
    assert scrubber.text_leak(text) is None


def test_json_leak(scrubber: Scrubber) -> None:
    assert scrubber.json_leak("mirai") is None
    assert scrubber.json_leak(3) is None
    assert scrubber.json_leak(None) is None
    assert scrubber.json_leak(["a", {"b": [1, 2.5, True]}]) is None
    assert scrubber.json_leak(["a", "user=bob"]) is not None
    assert scrubber.json_leak({"fs01.lab": 1}) is not None
    assert scrubber.json_leak({"k": {"x": "10.0.0.1"}}) is not None
    assert scrubber.json_leak(float("nan")) == "not a finite number"
    deep: object = "x"
    for _ in range(5):
        deep = [deep]
    assert scrubber.json_leak(deep) == "nested deeper than 4 levels"  # type: ignore[arg-type]  # a JSON list


@pytest.mark.parametrize(
    ("value", "type_", "reason"),
    [
        ("https://u:pw@evil.example.net/", "url", "user name or password"),
        ("http://evil.xyz/login?email=bob@mailbox.net", "url", "e-mail"),
        ("http://evil.xyz/login?email=bob@acme-univ.org", "url", "internal host name"),
        ("http://evil.xyz/p?user=jsmith", "url", "user id"),
        ("http://evil.xyz/p?next=http://10.0.0.1/", "url", "internal URL"),
        ("http://evil.xyz/p?h=fileserver.corp", "url", "internal host name"),
        ("http://evil.xyz/ping?ip=192.168.1.1", "url", "private, reserved or own address"),
        ("http://evil.xyz/~jdoe/", "url", "organisation name"),
        ("http://acmeu-login.xyz/", "url", "organisation name"),
        ("acmeu-login.xyz", "domain", "organisation name"),
        ("jdoe@evil.xyz", "email", "organisation name"),
    ],
)
def test_value_leaks(
    scrubber: Scrubber, make: MakeIndicator, value: str, type_: str, reason: str
) -> None:
    found = scrubber.value_leak(make(value, type_))
    assert found is not None
    assert reason in found, found


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        ("http://evil.xyz/wp-admin/setup.php?x=1", "url"),
        ("https://evil.xyz", "url"),
        ("evil.xyz", "domain"),
        ("x@evil.xyz", "email"),
        ("45.33.32.156", "ipv4"),
        ("2a01:4f8::1", "ipv6"),
        ("45.33.32.0/24", "cidr"),
        ("d41d8cd98f00b204e9800998ecf8427e", "md5"),
    ],
)
def test_values_that_pass(scrubber: Scrubber, make: MakeIndicator, value: str, type_: str) -> None:
    assert scrubber.value_leak(make(value, type_)) is None


def test_addresses_are_internal_only_when_learned(make: MakeIndicator) -> None:
    terms = SensitiveTerms(["45.33.32.156"])
    scrubber = Scrubber(Warninglists.for_policy(policy()), terms)
    assert scrubber.value_leak(make("45.33.32.156")) == "the value is a known internal host"
    assert scrubber.value_leak(make("45.33.32.157")) is None


def test_custom_type_values_are_scanned_as_text(scrubber: Scrubber) -> None:
    custom = replace(indicator(), type="useragent", value="Mozilla fs01.lab")
    assert scrubber.value_leak(custom) is not None
    clean = replace(indicator(), type="useragent", value="Mozilla/5.0 zgrab")
    assert scrubber.value_leak(clean) is None


def test_sensitive_terms() -> None:
    terms = SensitiveTerms()
    assert not terms.found_in("anything")
    assert len(terms) == 0
    terms.update(["Fs01.Lab", "  ", "---", "Jürgen", "/home/jdoe/.ssh"])
    assert len(terms) == 3
    assert terms.found_in("host FS01.lab")
    assert terms.found_in("fs01-lab")  # punctuation does not matter, token order does
    assert not terms.found_in("fs01 lab2")
    assert not terms.found_in("xfs01.lab")
    assert terms.found_in("bei jürgen!")
    assert terms.found_in("cat /home/jdoe/.ssh/id_rsa")
    assert not terms.found_in("/home/other/.ssh")
    assert terms.is_term("FS01.LAB")
    assert not terms.is_term("fs01")
