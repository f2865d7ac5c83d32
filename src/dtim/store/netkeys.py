"""Sortable text keys for network indicators, so CIDR containment is an index range scan.

An address or network becomes ``(lo, hi)``: the family digit followed by the
first and last address as fixed-width lowercase hex (8 digits for IPv4, 32 for
IPv6). In byte order (SQLite BINARY, PostgreSQL ``COLLATE "C"``) these strings
sort exactly like the numbers, on both databases, and IPv4 never mixes with IPv6.
"""

from __future__ import annotations

import ipaddress
import socket

NETWORK_TYPES = frozenset({"ipv4", "ipv6", "cidr"})
KEY_LENGTH = 33
"""Longest key: one family digit and 32 hex digits."""


def network_range(text: str) -> tuple[str, str] | None:
    """``(lo, hi)`` keys of an address or CIDR, or None when ``text`` is neither."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    width = 8 if network.version == 4 else 32
    family = str(network.version)
    lo = f"{family}{int(network.network_address):0{width}x}"
    hi = f"{family}{int(network.broadcast_address):0{width}x}"
    return lo, hi


def indicator_range(type_: str, value: str) -> tuple[str | None, str | None]:
    """The keys stored on an indicator's row: set for ipv4, ipv6 and cidr, else None."""
    if type_ not in NETWORK_TYPES:
        return None, None
    if type_ != "cidr":
        # An address: its key is its packed form in hex, far cheaper than ipaddress.
        family, digit = (socket.AF_INET, "4") if type_ == "ipv4" else (socket.AF_INET6, "6")
        try:
            key = digit + socket.inet_pton(family, value).hex()
        except OSError:
            pass
        else:
            return key, key
    found = network_range(value)
    return (None, None) if found is None else found
