"""Properties: no canary leaves, ever; idempotence; no private address leaves; RED stays put.

Canaries are the things an organisation must never leak (internal host names,
user names, private and own addresses, the org name, file paths, staff e-mail,
log lines). They are planted in every field of an indicator (value, tags,
custom fields) and in the evidence of its sightings, then the indicator is
sent through every outgoing path of the filter, at every level, TLP and kind
of destination, and the bytes that come out are searched for them.
"""

from __future__ import annotations

import ipaddress
import json
import random
from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from dtim.model import Evidence, Indicator, JsonValue, Tlp
from dtim.privacy import Destination, PrivacyFilter, PrivacyLevel, SeededNoise, Shareable
from tests.privacy.conftest import NOW, indicator, policy

RECIPIENTS = ("peer-a", "team-x")
DESTINATIONS = (
    Destination.peer("peer-a", ["team-x"]),
    Destination.peer("peer-b"),
    Destination.group("team-x"),
    Destination.consumer("siem", tlps=list(Tlp)),
    Destination.public(),
)
CLEAN_VALUES = ("45.33.32.156", "evil-c2.xyz", "http://malware.xyz/payload.bin", "a" * 64)
CLEAN_TAGS = ("ssh-bruteforce", "mirai", "cve-2021-44228", "tcp/22")

token = st.text("bcdfghjkmnpqrstvwxz", min_size=6, max_size=10).map(lambda t: f"zq{t}")
octet = st.integers(1, 254)
rfc1918 = st.one_of(
    st.builds("10.{}.{}.{}".format, octet, octet, octet),
    st.builds("172.{}.{}.{}".format, st.integers(16, 31), octet, octet),
    st.builds("192.168.{}.{}".format, octet, octet),
)
own_address = st.builds("81.2.69.{}".format, octet)


@st.composite
def canaries(draw: st.DrawFn) -> dict[str, str]:
    """One of each kind of secret, with distinctive spellings."""
    user, host, folder = draw(st.lists(token, min_size=3, max_size=3, unique=True))
    return {
        "user": user,
        "host": host,
        "host.corp": f"{host}.corp",
        "host.own": f"{host}.acme-univ.org",
        "rfc1918": draw(rfc1918),
        "own": draw(own_address),
        "org": draw(st.sampled_from(["Acme University", "acmeu", "ACMEU"])),
        "path": draw(
            st.sampled_from(["/home/{}/.ssh/id_rsa", "C:\\Users\\{}\\Desktop", "/var/lib/{}/db"])
        ).format(folder),
        "folder": folder,
        "staff": f"{user}@acme-univ.org",
        "email": f"{user}@mailbox.net",
        "log": f"Nov 28 10:00:01 {host} sshd[812]: Failed password for {user} from 10.9.8.7",
    }


def _planted_value(secrets: dict[str, str], choice: int) -> str:
    host, user = secrets["host"], secrets["user"]
    options = [
        secrets["rfc1918"],
        secrets["own"],
        secrets["host.corp"],
        secrets["host.own"],
        secrets["staff"],
        f"http://{host}/login",
        f"http://{secrets['rfc1918']}:8080/admin",
        f"http://evil.xyz/{user}/x",
        f"http://evil.xyz/track?e={secrets['email']}",
        f"http://evil.xyz/p?h={secrets['host.corp']}",
        f"http://acmeu-login.xyz/{user}",
        f"{user}-acmeu.xyz",
        *CLEAN_VALUES,
    ]
    return options[choice % len(options)]


def _planted(secrets: dict[str, str], choice: int, tlp: Tlp) -> Indicator:
    planted_tags = [
        f"seen on {secrets['host']}",
        secrets["user"],
        f"from {secrets['rfc1918']}",
        f"own {secrets['own']}",
        *(secrets[name] for name in ("org", "path", "staff", "email", "host.corp", "host.own")),
        secrets["log"][:120],
    ]
    custom: dict[str, JsonValue] = {
        "family": "mirai",
        "note": f"victim {secrets['user']} on {secrets['host']}",
        "details": {
            "path": secrets["path"],
            "list": [secrets["rfc1918"], {"who": secrets["staff"]}],
        },
        "ticket": secrets["org"],
    }
    return indicator(
        _planted_value(secrets, choice),
        tags=[*CLEAN_TAGS, *planted_tags],
        custom_fields=custom,
        tlp=tlp,
        recipients=RECIPIENTS,
        sightings=choice % 40 + 1,
        sources=[secrets["host"], "ufw"],
    )


def _evidence(secrets: dict[str, str]) -> Evidence:
    return Evidence(
        lines=(secrets["log"],),
        hosts=(secrets["host"], secrets["host.corp"]),
        users=(secrets["user"],),
        paths=(secrets["path"],),
        details={"host": secrets["host"]},
    )


def _outputs(privacy: PrivacyFilter, item: Indicator, destination: Destination) -> list[bytes]:
    """Every outgoing path the privacy package owns, as bytes on the wire."""
    until = NOW + timedelta(days=3)
    shared: list[Shareable | None] = [
        privacy.share(item, destination, valid_until=until),
        privacy.sanitize(item, destination, valid_until=until).shareable,
        *privacy.share_many([item], destination, valid_until=lambda _: until),
    ]
    out = [s.to_bytes() for s in shared if s is not None]
    for copy in shared:
        if copy is not None:  # the fast writer is byte for byte the generic encoder
            canonical = json.dumps(
                copy.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
            assert copy.to_bytes() == canonical.encode()
    out += [json.dumps(s.to_json()).encode() for s in shared if s is not None]
    output = privacy.explain(item, destination, valid_until=until).output
    if output is not None:
        out.append(json.dumps(output, ensure_ascii=False).encode())
    return out


def _needles(secrets: dict[str, str], learned: bool) -> list[str]:
    generic = ["rfc1918", "own", "host.corp", "host.own", "staff", "email", "path", "folder", "log"]
    names = generic + (["user", "host"] if learned else [])
    return [secrets[name].lower() for name in names] + ["acmeu", "acme university"]


@given(canaries(), st.integers(0, 10**6), st.sampled_from(list(Tlp)))
def test_no_canary_ever_leaves(secrets: dict[str, str], choice: int, tlp: Tlp) -> None:
    item = _planted(secrets, choice, tlp)
    for level in PrivacyLevel:
        privacy = PrivacyFilter(policy(level=level), noise=SeededNoise(random.Random(1)))
        privacy.learn(_evidence(secrets))
        for destination in DESTINATIONS:
            for raw in _outputs(privacy, item, destination):
                text = raw.decode().lower()
                for needle in _needles(secrets, learned=True):
                    assert needle not in text, (needle, level, destination, text)


@given(canaries(), st.integers(0, 10**6))
def test_generic_canaries_are_caught_without_evidence(secrets: dict[str, str], choice: int) -> None:
    """Even with nothing learned, shapes and policy terms alone stop the generic canaries."""
    item = _planted(secrets, choice, Tlp.GREEN)
    privacy = PrivacyFilter(policy(level=PrivacyLevel.OPEN), noise=SeededNoise(random.Random(1)))
    for raw in _outputs(privacy, item, DESTINATIONS[0]):
        text = raw.decode().lower()
        for needle in _needles(secrets, learned=False):
            assert needle not in text, (needle, text)


def _refiltered(original: Indicator, shared: Shareable) -> Indicator:
    """What a Shareable says, put back into the indicator it came from."""
    return replace(
        original,
        value=shared.value,
        confidence=original.confidence if shared.confidence is None else shared.confidence,
        first_seen=shared.first_seen or original.first_seen,
        last_seen=shared.last_seen or original.last_seen,
        tags=original.tags if shared.tags is None else shared.tags,
        sightings=original.sightings if shared.sightings is None else shared.sightings,
        custom_fields=original.custom_fields
        if shared.custom_fields is None
        else shared.custom_fields_json(),
    )


@given(
    canaries(),
    st.integers(0, 10**6),
    st.sampled_from(list(Tlp)),
    st.sampled_from(list(PrivacyLevel)),
)
def test_filtering_is_idempotent(
    secrets: dict[str, str], choice: int, tlp: Tlp, level: PrivacyLevel
) -> None:
    item = _planted(secrets, choice, tlp)
    privacy = PrivacyFilter(policy(level=level))
    privacy.learn(_evidence(secrets))
    until = NOW + timedelta(hours=5, minutes=17)
    for destination in DESTINATIONS:
        shared = privacy.share(item, destination, valid_until=until)
        if shared is None:
            continue
        again = privacy.share(
            _refiltered(item, shared), destination, valid_until=shared.valid_until
        )
        assert again == shared
        assert again.to_bytes() == shared.to_bytes()


addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _non_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        address.is_private
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT)
    )


@given(addresses, addresses, st.sampled_from(["address", "url", "tag"]))
def test_never_emits_private_or_reserved_addresses(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    tagged: ipaddress.IPv4Address | ipaddress.IPv6Address,
    form: str,
) -> None:
    host = str(address) if address.version == 4 else f"[{address}]"
    value = {"address": str(address), "url": f"http://{host}/x", "tag": "45.33.32.156"}[form]
    item = indicator(value, tags=[f"from {tagged}", "mirai"])
    privacy = PrivacyFilter(policy(level=PrivacyLevel.OPEN, own_networks=()))
    shared = privacy.share(item, DESTINATIONS[0])
    if form != "tag" and _non_public(address):
        assert shared is None
    if shared is not None and _non_public(tagged):
        assert shared.tags == ("mirai",)


@given(
    st.frozensets(st.sampled_from(["peer-a", "peer-b", "peer-c", "team-x"]), max_size=3),
    st.sampled_from(["peer-a", "peer-b", "peer-c"]),
    st.frozensets(st.sampled_from(["team-x", "team-y"]), max_size=2),
)
def test_red_never_reaches_a_non_recipient(
    recipients: frozenset[str], peer: str, groups: frozenset[str]
) -> None:
    item = indicator(tlp="red", recipients=sorted(recipients))
    privacy = PrivacyFilter(policy())
    shared = privacy.share(item, Destination.peer(peer, groups))
    assert (shared is not None) == (peer in recipients)
    for other in (
        Destination.group("team-x"),
        Destination.public(),
        Destination.consumer("c", tlps=list(Tlp)),
    ):
        assert privacy.share(item, other) is None
