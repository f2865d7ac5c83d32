"""Who an indicator may reach at all, before TLP is considered."""

from __future__ import annotations

from enum import StrEnum

from dtim.errors import ValidationError


class Scope(StrEnum):
    """Sharing scope: ``local`` never leaves; ``private`` (default) goes to approved peers."""

    LOCAL = "local"
    PRIVATE = "private"
    GROUP = "group"
    PUBLIC = "public"

    @classmethod
    def parse(cls, raw: str, field: str = "scope") -> Scope:
        """Read a scope name.

        Raises:
            ValidationError: the name is not a scope.
        """
        try:
            return cls(raw.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ValidationError(
                field, f"unknown scope {raw!r} (expected one of {choices})"
            ) from None
