"""Canonical forms of indicator values, refanging and type inference.

Normalisation is what makes ``hxxp://EVIL[.]example:80`` and
``http://evil.example/`` the same indicator with the same id on every node.
Every function here is idempotent: ``normalize(t, normalize(t, v)) ==
normalize(t, v)``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import partial
from urllib.parse import urlsplit, urlunsplit

import idna

from dtim.errors import ValidationError
from dtim.model.types import CUSTOM_TYPES, HASH_LENGTHS, IndicatorType, TypeRegistry

# Ordered: longer, more specific spellings first.
_REFANG = (
    (re.compile(r"^hxxps", re.IGNORECASE), "https"),
    (re.compile(r"^hxxp", re.IGNORECASE), "http"),
    (re.compile(r"^fxp", re.IGNORECASE), "ftp"),
    (re.compile(r"\[:\]//|\[://\]"), "://"),
    (re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\}", re.IGNORECASE), "."),
    (re.compile(r"\s+dot\s+", re.IGNORECASE), "."),
    (re.compile(r"\[@\]|\(@\)|\[at\]|\(at\)|\{at\}", re.IGNORECASE), "@"),
    (re.compile(r"\[:\]"), ":"),
)
_BRACKETS = frozenset("[({")

_HEX = re.compile(r"^[0-9a-f]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_EMAIL_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}
_URL_SCHEMES = frozenset(
    {
        "http",
        "https",
        "ftp",
        "ftps",
        "sftp",
        "ws",
        "wss",
        "tcp",
        "udp",
        "smb",
        "ldap",
        "ldaps",
        "ssh",
    }
)


def refang(raw: str) -> str:
    """Undo the usual defanging (``hxxp``, ``[.]``, ``(dot)``, ``[at]``) and trim white space."""
    value = raw.strip()
    # Every spelling above starts with hxx/fxp, holds a bracket, or spaces around "dot":
    # most values have none of them and skip the eight substitutions.
    if (
        _BRACKETS.isdisjoint(value)
        and value[:3].lower() not in ("hxx", "fxp")
        and len(value.split(maxsplit=1)) < 2
    ):
        return value
    for pattern, replacement in _REFANG:
        value = pattern.sub(replacement, value)
    return value


def defang(value: str) -> str:
    """Make a value safe to paste into a ticket: ``http`` → ``hxxp``, ``.`` → ``[.]``.

    ``refang(defang(v)) == v`` for every normalised value.
    """
    out = value.replace(".", "[.]").replace("@", "[@]")
    if out[:4].lower() == "http":
        out = "hxxp" + out[4:]
    elif out[:3].lower() == "ftp":
        out = "fxp" + out[3:]
    return out.replace("://", "[://]")


def normalize(type_: str, raw: str, registry: TypeRegistry = CUSTOM_TYPES) -> str:
    """Return the canonical form of ``raw`` as an indicator of ``type_``.

    Raises:
        ValidationError: the value is not a valid ``type_``, or the type is unknown.
    """
    value = refang(raw)
    if not value:
        raise ValidationError("value", "empty value")
    try:
        builtin = IndicatorType(type_)
    except ValueError:
        custom = registry.get(type_)
        if custom is None:
            raise ValidationError("type", f"unknown indicator type {type_!r}") from None
        return custom(value)
    return _BUILTIN[builtin](value)


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValidationError("value", f"{value!r} is not an IPv4 address") from None


def _ipv6(value: str) -> str:
    try:
        return ipaddress.IPv6Address(value.strip("[]")).compressed
    except ValueError:
        raise ValidationError("value", f"{value!r} is not an IPv6 address") from None


def _cidr(value: str) -> str:
    if "/" not in value:
        raise ValidationError("value", f"{value!r} has no prefix length (did you mean an ip type?)")
    try:
        interface = ipaddress.ip_interface(value)
    except ValueError:
        raise ValidationError("value", f"{value!r} is not a CIDR network") from None
    network = interface.network
    if interface.ip != network.network_address:
        raise ValidationError(
            "value", f"{value!r} has host bits set (the network is {network.compressed})"
        )
    return network.compressed


def _domain(value: str) -> str:
    name = value.rstrip(".").lower()
    if not name or "." not in name:
        raise ValidationError(
            "value", f"{value!r} is not a domain name (needs at least two labels)"
        )
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii") if not name.isascii() else name
    except idna.IDNAError as exc:
        raise ValidationError(
            "value", f"{value!r} is not a valid international domain name: {exc}"
        ) from None
    if len(ascii_name) > 253:
        raise ValidationError(
            "value", f"domain name longer than 253 characters ({len(ascii_name)})"
        )
    for label in ascii_name.split("."):
        if not _LABEL.match(label):
            raise ValidationError("value", f"{value!r} has an invalid label {label!r}")
    if ascii_name.rsplit(".", 1)[1].isdigit():
        raise ValidationError("value", f"{value!r} looks like an IP address, not a domain")
    return ascii_name


def _host(host: str, original: str) -> str:
    if host.startswith("["):
        return "[" + _ipv6(host) + "]"
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        return _domain(host)
    except ValidationError:
        if "." not in host and _LABEL.match(host.lower()):
            return host.lower()  # single-label hosts (intranet names, localhost) are valid in URLs
        raise ValidationError("value", f"{original!r} has an invalid host {host!r}") from None


def _url(value: str) -> str:
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in _URL_SCHEMES or not parts.netloc:
        raise ValidationError(
            "value", f"{value!r} is not an absolute URL (expected scheme://host/...)"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValidationError("value", f"{value!r} has an invalid port") from None
    hostname = parts.netloc.rsplit("@", 1)[-1]
    if hostname.startswith("["):
        hostname = hostname[: hostname.index("]") + 1] if "]" in hostname else hostname
    elif ":" in hostname:
        hostname = hostname.rsplit(":", 1)[0]
    if not hostname:
        raise ValidationError("value", f"{value!r} has no host")
    host = _host(hostname, value)
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _email(value: str) -> str:
    local, sep, domain = value.lower().rpartition("@")
    if not sep or not _EMAIL_LOCAL.match(local) or local.startswith(".") or local.endswith("."):
        raise ValidationError("value", f"{value!r} is not an e-mail address")
    return f"{local}@{_domain(domain)}"


def _hex_digest(kind: IndicatorType, value: str) -> str:
    digest = value.lower()
    length = HASH_LENGTHS[kind]
    if len(digest) != length or not _HEX.match(digest):
        raise ValidationError(
            "value", f"{value!r} is not a {kind.value} digest ({length} hex digits)"
        )
    return digest


_BUILTIN: dict[IndicatorType, Callable[[str], str]] = {
    IndicatorType.IPV4: _ipv4,
    IndicatorType.IPV6: _ipv6,
    IndicatorType.CIDR: _cidr,
    IndicatorType.DOMAIN: _domain,
    IndicatorType.URL: _url,
    IndicatorType.EMAIL: _email,
    **{kind: partial(_hex_digest, kind) for kind in HASH_LENGTHS},
}


def infer_type(raw: str) -> IndicatorType:
    """Guess the type of a raw value, as an analyst pasting it would expect.

    Raises:
        ValidationError: the value matches no built-in type.
    """
    value = refang(raw)
    lowered = value.lower()
    if _HEX.match(lowered):
        for kind, length in HASH_LENGTHS.items():
            if len(lowered) == length:
                return kind
    if "/" in value and "://" not in value:
        try:
            ipaddress.ip_network(value, strict=False)
            return IndicatorType.CIDR
        except ValueError:
            pass
    try:
        address = ipaddress.ip_address(value.strip("[]"))
        return IndicatorType.IPV4 if address.version == 4 else IndicatorType.IPV6
    except ValueError:
        pass
    if "://" in value:
        return IndicatorType.URL
    if "@" in value:
        return IndicatorType.EMAIL
    try:
        _domain(value)
        return IndicatorType.DOMAIN
    except ValidationError:
        raise ValidationError("value", f"cannot tell what kind of indicator {raw!r} is") from None
