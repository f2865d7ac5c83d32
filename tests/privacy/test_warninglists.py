"""Warninglists: shipped data, own lists, matching for every indicator type."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dtim.errors import ConfigError
from dtim.privacy import (
    BUILTIN_LISTS,
    Category,
    PrivacyPolicy,
    Warninglist,
    Warninglists,
    builtin_warninglists,
    load_warninglist_file,
    parse_warninglist,
)
from tests.privacy.conftest import MakeIndicator, policy


@pytest.fixture(scope="module")
def lists() -> Warninglists:
    return Warninglists.for_policy(
        policy(extra_warninglist_entries=("198.51.100.0/24", "partner.net"))
    )


def test_every_shipped_list_has_source_date_and_entries() -> None:
    shipped = builtin_warninglists()
    assert [w.name for w in shipped] == list(BUILTIN_LISTS)
    for wlist in shipped:
        assert wlist.source, wlist.name
        assert wlist.date.startswith("20"), wlist.name
        assert wlist.description, wlist.name
        assert wlist.networks or wlist.domains, wlist.name
    top = next(w for w in shipped if w.name == "top-domains")
    assert len(top.domains) >= 300
    assert "github.io" not in top.domains  # anyone can host there


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("ipv4", "10.1.2.3", "rfc1918"),
        ("ipv4", "172.31.255.255", "rfc1918"),
        ("ipv4", "192.168.0.1", "rfc1918"),
        ("ipv4", "100.64.0.1", "shared-address-space"),
        ("ipv4", "127.0.0.1", "loopback"),
        ("ipv6", "::1", "loopback"),
        ("ipv4", "169.254.10.10", "link-local"),
        ("ipv6", "fe80::1", "link-local"),
        ("ipv4", "169.254.169.254", "cloud-metadata"),
        ("ipv6", "fd00:ec2::254", "cloud-metadata"),
        ("ipv4", "168.63.129.16", "cloud-metadata"),
        ("ipv6", "fd12:3456::1", "unique-local"),
        ("ipv4", "224.0.0.251", "multicast"),
        ("ipv6", "ff02::1", "multicast"),
        ("ipv4", "192.0.2.10", "documentation"),
        ("ipv4", "203.0.113.10", "documentation"),
        ("ipv6", "2001:db8::1", "documentation"),
        ("ipv6", "3fff::1", "documentation"),
        ("ipv4", "198.18.0.1", "benchmarking"),
        ("ipv4", "0.1.2.3", "reserved"),
        ("ipv4", "240.0.0.1", "reserved"),
        ("ipv4", "255.255.255.255", "reserved"),
        ("ipv6", "::", "reserved"),
        ("ipv6", "::ffff:808:808", "reserved"),
        ("ipv6", "64:ff9b::808:808", "reserved"),
        ("ipv6", "2002:a00:1::1", "reserved"),  # 6to4 of 10.0.0.1
        ("ipv6", "4000::1", "reserved"),
        ("ipv4", "8.8.8.8", "public-dns"),
        ("ipv4", "1.1.1.1", "public-dns"),
        ("ipv4", "4.2.2.4", "public-dns"),
        ("ipv6", "2620:fe::fe", "public-dns"),
        ("ipv4", "198.41.0.4", "dns-root-servers"),
        ("ipv4", "104.16.1.1", "cdn"),
        ("ipv6", "2606:4700::1", "cdn"),
        ("ipv4", "81.2.69.7", "own-networks"),
        ("ipv6", "2a02:ab00::9", "own-networks"),
        ("ipv4", "198.51.100.9", "config"),
        ("cidr", "10.0.0.0/16", "rfc1918"),
        ("cidr", "0.0.0.0/0", None),  # reported below: any overlap is a hit
        ("domain", "fileserver.corp", "internal-names"),
        ("domain", "printer.local", "internal-names"),
        ("domain", "nas.home.arpa", "internal-names"),
        ("domain", "metadata.google.internal", "internal-names"),
        ("domain", "www.example.com", "special-names"),
        ("domain", "foo.test", "special-names"),
        ("domain", "vpn.acme-univ.org", "own-domains"),
        ("domain", "acme-univ.org", "own-domains"),
        ("domain", "sub.partner.net", "config"),
        ("domain", "google.com", "top-domains"),
        ("domain", "login.microsoftonline.com", "top-domains"),
        ("email", "j.doe@acme-univ.org", "own-domains"),
        ("email", "j.doe@mail.acme-univ.org", "own-domains"),
        ("email", "root@server.local", "internal-names"),
        ("url", "https://intranet/login", "internal-names"),
        ("url", "http://10.0.0.5:8080/admin", "rfc1918"),
        ("url", "http://[fe80::1]/", "link-local"),
        ("url", "https://wiki.acme-univ.org/page", "own-domains"),
        ("url", "https://user@wiki.acme-univ.org/", "own-domains"),
        ("url", "https://www.google.com/", "top-domains"),
        ("url", "https://fs.corp:8443/x", "internal-names"),
    ],
)
def test_hits(
    lists: Warninglists, make: MakeIndicator, type_: str, value: str, expected: str | None
) -> None:
    hit = lists.match(make(value, type_))
    if expected is None:
        assert hit is not None
    else:
        assert hit is not None
        assert hit.list_name == expected, hit


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("ipv4", "45.33.32.156"),
        ("ipv6", "2a01:4f8::1"),
        ("cidr", "45.33.32.0/24"),
        ("domain", "evil-c2.xyz"),
        ("domain", "notgoogle.com"),
        ("domain", "github.io"),
        ("email", "attacker@gmail.com"),  # a top domain stops domains, not mailboxes
        ("url", "https://docs.google.com/forms/d/phish"),  # a file on a top site is still an IOC
        ("url", "http://45.33.32.156/x.sh"),
        ("url", "http://[2a01:4f8::1]:8080/"),
        ("sha256", "a" * 64),
    ],
)
def test_misses(lists: Warninglists, make: MakeIndicator, type_: str, value: str) -> None:
    assert lists.match(make(value, type_)) is None


def test_malformed_and_custom_values_do_not_match(lists: Warninglists, make: MakeIndicator) -> None:
    assert lists.match(replace(make(), value="not-an-address")) is None
    assert lists.match_value("ipv4", "not-an-address") is None
    assert lists.match_value("ipv6", "zz::") is None
    assert lists.match_value("cidr", "nonsense") is None
    assert lists.match_value("ja3", "10.0.0.1") is None


def test_cidr_overlap_reports_some_list(lists: Warninglists) -> None:
    hit = lists.match_value("cidr", "0.0.0.0/0")
    assert hit is not None
    assert hit.category in (Category.INTERNAL, Category.SPECIAL, Category.BENIGN)
    assert lists.match_value("cidr", "2a01::/16") is None
    assert lists.match_value("cidr", "2a02::/16") is not None  # contains own 2a02:ab00::/32


def test_hit_json() -> None:
    lists = Warninglists.for_policy(PrivacyPolicy())
    hit = lists.match_value("ipv4", "10.0.0.1")
    assert hit is not None
    assert hit.to_json() == {
        "list": "rfc1918",
        "entry": "10.0.0.0/8",
        "category": "internal",
        "description": "private IPv4 address space (never routed on the Internet)",
    }


def test_address_and_host_helpers(lists: Warninglists) -> None:
    assert lists.match_address("10.0.0.1") is not None
    assert lists.match_address("::1") is not None
    assert lists.match_address("fs01") is None
    assert lists.match_host("x.lan", "text") is not None
    assert lists.match_host("google.com", "text") is None  # benign names are harmless in text


def test_disabled_lists_and_unknown_names() -> None:
    lists = Warninglists.for_policy(
        PrivacyPolicy(disabled_warninglists=("documentation", "top-domains"))
    )
    assert lists.match_value("ipv4", "192.0.2.1") is None
    assert lists.match_value("domain", "google.com") is None
    assert "documentation" not in [w.name for w in lists.lists]
    with pytest.raises(ConfigError) as caught:
        Warninglists.for_policy(PrivacyPolicy(disabled_warninglists=("nope",)))
    assert caught.value.key == "privacy.disabled_warninglists"


def test_exact_lists_and_url_contexts() -> None:
    exact = parse_warninglist(
        "# match: exact\n# applies-to: domain url\nexact.example.net\n", name="exact"
    )
    root_only = parse_warninglist("# applies-to: url-root\nsite.net\n", name="root")
    lists = Warninglists([exact, root_only])
    assert lists.match_value("domain", "exact.example.net") is not None
    assert lists.match_value("domain", "sub.exact.example.net") is None
    assert lists.match_value("url", "http://exact.example.net/a") is not None
    assert lists.match_value("url", "http://site.net/") is not None
    assert lists.match_value("url", "http://www.site.net") is not None
    assert lists.match_value("url", "http://site.net/file.exe") is None
    assert lists.match_value("domain", "site.net") is None


def test_parse_warninglist_format() -> None:
    text = (
        "# name: partners\n# description: our partners\n# category: benign\n"
        "# source: contracts\n# date: 2026-01-01\n# unrelated: header ignored\n"
        "# name: not-twice\n\n192.0.2.0/24   # their office\n*.Partner.EXAMPLE.\nxn--bcher-kva.de\n"
        "bücher.example\n"
    )
    wlist = parse_warninglist(text)
    assert wlist == Warninglist(
        name="partners",
        description="our partners",
        category=Category.BENIGN,
        source="contracts",
        date="2026-01-01",
        networks=("192.0.2.0/24",),
        domains=("partner.example", "xn--bcher-kva.de", "xn--bcher-kva.example"),
    )
    assert parse_warninglist("1.2.3.4\n", origin="/x/y/mine.txt").name == "mine"
    assert parse_warninglist("1.2.3.4\n", name="given").name == "given"


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("# category: friendly\n1.2.3.4\n", "category", None),
        ("# match: fuzzy\n", "match", None),
        ("# applies-to: hashes\n", "applies-to", None),
        ("1.2.3.4\nnot a domain!\n", None, 2),
        ("b\u00fccher..x\n", None, 1),
    ],
)
def test_parse_warninglist_errors(text: str, key: str | None, line: int | None) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_warninglist(text, origin="lists/x.txt")
    assert caught.value.path == "lists/x.txt"
    assert caught.value.key == key
    assert caught.value.line == line


def test_load_warninglist_file(tmp_path: Path) -> None:
    path = tmp_path / "extra.txt"
    path.write_text("# source: ours\n203.0.113.0/24\n", encoding="utf-8")
    assert load_warninglist_file(path).name == "extra"
    with pytest.raises(ConfigError, match="cannot read"):
        load_warninglist_file(tmp_path / "missing.txt")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read"):
        load_warninglist_file(tmp_path / "binary.txt")


def test_innermost_entry_wins_across_lists() -> None:
    ours = Warninglist("ours", networks=("8.8.8.0/24",), category=Category.INTERNAL)
    lists = Warninglists.for_policy(PrivacyPolicy(), [ours])
    wide = lists.match_value("ipv4", "8.8.8.1")
    narrow = lists.match_value("ipv4", "8.8.8.8")
    assert wide is not None
    assert wide.list_name == "ours"
    assert narrow is not None
    assert narrow.list_name == "public-dns"
