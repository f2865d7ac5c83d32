"""Text from outside the node: refused when it holds a NUL character.

PostgreSQL's text type cannot hold U+0000, so a search term, id or group with
one failed in the database (a server error naming no field) instead of being
refused as bad input. No indicator, id, group or search term has a reason to
contain it, and both backends refuse it alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from dtim.errors import ValidationError

NUL = "\x00"
NUL_REASON = "must not contain a NUL character"


def holds_nul(value: object) -> bool:
    """Whether ``value``, a text or a list of texts, holds a NUL character."""
    texts = value if isinstance(value, list | tuple) else (value,)
    return any(isinstance(text, str) and NUL in text for text in texts)


def refuse_nul(fields: Iterable[tuple[str, object]]) -> None:
    """Check (name, value) pairs of a request.

    Raises:
        ValidationError: naming the first field whose text holds a NUL character.
    """
    for name, value in fields:
        if holds_nul(value):
            raise ValidationError(name, NUL_REASON)
