"""Indicator types: the built-in ones and custom types registered by name."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

from dtim.errors import ValidationError


class IndicatorType(StrEnum):
    """Built-in indicator types."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    EMAIL = "email"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"


HASH_TYPES = frozenset(
    {IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256, IndicatorType.SHA512}
)
HASH_LENGTHS = {
    IndicatorType.MD5: 32,
    IndicatorType.SHA1: 40,
    IndicatorType.SHA256: 64,
    IndicatorType.SHA512: 128,
}
NETWORK_TYPES = frozenset({IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR})

Normalizer = Callable[[str], str]
"""Turns a raw value into its canonical form, or raises ValidationError."""

_CUSTOM_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")


class TypeRegistry:
    """Custom indicator types known to this process, by name.

    A registry is an ordinary object so that tests and services can hold
    their own; :data:`CUSTOM_TYPES` is the process-wide default.
    """

    def __init__(self) -> None:
        self._normalizers: dict[str, Normalizer] = {}

    def register(self, name: str, normalizer: Normalizer) -> None:
        """Add a custom type.

        Raises:
            ValidationError: the name is malformed or clashes with a built-in type.
        """
        if not _CUSTOM_NAME.match(name):
            raise ValidationError(
                "type", f"custom type name {name!r} must match {_CUSTOM_NAME.pattern}"
            )
        if name in IndicatorType.__members__.values() or name in {t.value for t in IndicatorType}:
            raise ValidationError("type", f"{name!r} is a built-in type")
        self._normalizers[name] = normalizer

    def get(self, name: str) -> Normalizer | None:
        """The normalizer for a custom type, or None when it is not registered."""
        return self._normalizers.get(name)

    def names(self) -> frozenset[str]:
        """Names of every registered custom type."""
        return frozenset(self._normalizers)


CUSTOM_TYPES = TypeRegistry()
