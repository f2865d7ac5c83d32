"""Canonical spelling of domain names used in lists and policies."""

from __future__ import annotations

from dtim.errors import ValidationError


def canonical_domain(raw: str) -> str:
    """Lowercase, strip ``*.`` and dots, and IDNA-encode a domain entry.

    Single labels (``local``, ``corp``) are accepted: lists use them as suffixes.

    Raises:
        ValidationError: not a plausible domain name.
    """
    name = raw.strip().lower().removeprefix("*.").strip(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValidationError("domain", f"{raw!r} is not a valid international name") from None
    if not name or not all(
        part.replace("-", "").replace("_", "").isalnum() for part in name.split(".")
    ):
        raise ValidationError("domain", f"{raw!r} is not a domain name")
    return name
