from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtim.errors import ValidationError
from dtim.model import IndicatorType, defang, infer_type, normalize, refang
from dtim.model.normalize import _REFANG
from dtim.model.types import TypeRegistry


@pytest.mark.parametrize(
    ("type_", "raw", "expected"),
    [
        ("ipv4", " 198.51.100.7 ", "198.51.100.7"),
        ("ipv4", "198[.]51[.]100[.]7", "198.51.100.7"),
        ("ipv6", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("ipv6", "[2001:db8::1]", "2001:db8::1"),
        ("cidr", "203.0.113.0/24", "203.0.113.0/24"),
        ("cidr", "2001:DB8::/32", "2001:db8::/32"),
        ("domain", "Evil.Example.COM.", "evil.example.com"),
        ("domain", "evil(dot)example[.]com", "evil.example.com"),
        ("domain", "bücher.example", "xn--bcher-kva.example"),
        ("url", "hxxp://EVIL[.]Example:80", "http://evil.example/"),
        ("url", "HTTPS://evil.example:443/a/B?q=1#frag", "https://evil.example/a/B?q=1"),
        ("url", "https://evil.example:8443/x", "https://evil.example:8443/x"),
        ("url", "http://[2001:DB8::1]:8080/", "http://[2001:db8::1]:8080/"),
        ("url", "hxxps[://]bücher.example/p", "https://xn--bcher-kva.example/p"),
        ("email", "Bad.Actor[at]Evil[.]Example", "bad.actor@evil.example"),
        ("md5", "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
        (
            "sha1",
            "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        ),
        (
            "sha256",
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            "sha512",
            "CF83E1357EEFB8BDF1542850D66D8007D620E4050B5715DC83F4A921D36CE9CE47D0D13C5D85F2B0FF8318D2877EEC2F63B931BD47417A81A538327AF927DA3E",
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        ),
    ],
)
def test_normalize_every_type(type_: str, raw: str, expected: str) -> None:
    assert normalize(type_, raw) == expected
    assert normalize(type_, expected) == expected


@pytest.mark.parametrize(
    ("type_", "raw", "message"),
    [
        ("ipv4", "300.1.1.1", "not an IPv4"),
        ("ipv4", "01.2.3.4", "not an IPv4"),
        ("ipv6", "2001:db8::g", "not an IPv6"),
        ("cidr", "203.0.113.5/24", r"host bits set \(the network is 203\.0\.113\.0/24\)"),
        ("cidr", "203.0.113.0", "no prefix length"),
        ("cidr", "203.0.113.0/33", "not a CIDR"),
        ("domain", "localhost", "at least two labels"),
        ("domain", "-bad.example", "invalid label"),
        ("domain", "1.2.3.4", "looks like an IP"),
        ("domain", "a" * 64 + ".example", "invalid label"),
        ("url", "evil.example/path", "not an absolute URL"),
        ("url", "http://evil.example:99999/", "invalid port"),
        ("email", "no-at-sign.example", "not an e-mail"),
        ("md5", "abc", "32 hex digits"),
        ("sha256", "z" * 64, "64 hex digits"),
        ("nosuchtype", "x", "unknown indicator type"),
        ("ipv4", "   ", "empty value"),
    ],
)
def test_normalize_rejects_with_field_and_reason(type_: str, raw: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        normalize(type_, raw)
    assert info.value.field in {"value", "type"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.2.3.4", IndicatorType.IPV4),
        ("2001:db8::1", IndicatorType.IPV6),
        ("10.0.0.0/8", IndicatorType.CIDR),
        ("hxxp://evil[.]example", IndicatorType.URL),
        ("a@evil.example", IndicatorType.EMAIL),
        ("evil.example", IndicatorType.DOMAIN),
        ("d41d8cd98f00b204e9800998ecf8427e", IndicatorType.MD5),
        ("a" * 40, IndicatorType.SHA1),
        ("a" * 64, IndicatorType.SHA256),
        ("a" * 128, IndicatorType.SHA512),
    ],
)
def test_infer_type(raw: str, expected: IndicatorType) -> None:
    assert infer_type(raw) is expected


def test_infer_type_refuses_gibberish() -> None:
    with pytest.raises(ValidationError, match="cannot tell"):
        infer_type("not an indicator")


def test_custom_types_are_registered_by_name() -> None:
    registry = TypeRegistry()
    registry.register("ja3", lambda raw: raw.lower())
    assert normalize("ja3", "ABC", registry) == "abc"
    with pytest.raises(ValidationError, match="built-in"):
        registry.register("ipv4", str)
    with pytest.raises(ValidationError, match="must match"):
        registry.register("Bad Name", str)


labels = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
domains = st.builds(
    lambda parts, tld: ".".join([*parts, tld]),
    st.lists(labels, min_size=1, max_size=3),
    st.sampled_from(["com", "net", "example", "org"]),
)
ipv4s = st.ip_addresses(v=4).map(str)
ipv6s = st.ip_addresses(v=6).map(str)
urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https", "HTTP", "ftp"]),
    domains,
    st.from_regex(r"[a-zA-Z0-9/_.-]{0,20}", fullmatch=True),
)


@given(st.one_of(domains, ipv4s, ipv6s, urls))
def test_normalisation_is_idempotent(raw: str) -> None:
    kind = infer_type(raw).value
    once = normalize(kind, raw)
    assert normalize(kind, once) == once
    assert infer_type(once).value == kind


@given(st.one_of(domains, ipv4s, urls))
def test_defang_refang_round_trip(raw: str) -> None:
    kind = infer_type(raw).value
    value = normalize(kind, raw)
    defanged = defang(value)
    assert "." not in defanged.replace("[.]", "")
    assert refang(defanged) == value
    assert normalize(kind, defanged) == value


@given(
    st.text(alphabet=st.sampled_from(list("hHxXpPfFsdotDOTat.@:/[](){}1a \t\u00a0\u3000")))
    | st.text()
)
def test_refang_shortcut_changes_nothing(raw: str) -> None:
    # The shortcut skips the substitutions only when none of them could apply.
    value = raw.strip()
    for pattern, replacement in _REFANG:
        value = pattern.sub(replacement, value)
    assert refang(raw) == value
