"""The ``<option>`` lists of the dashboard's selects, written out in Python.

The indicators page has eight selects, and as Jinja loops their options cost as
much as the rest of its layout. The lists are fixed (types, TLPs, orders), so a
select's markup is made once per chosen value and reused; every value and
label is escaped.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

Choice = str | tuple[str, str]
"""A value shown as it is, or a (value, label) pair."""


def options(choices: Sequence[Choice], chosen: object = None) -> Markup:
    """One ``<option>`` per choice, in order; the one whose value is ``chosen`` is selected."""
    return _options(tuple(choices), chosen if isinstance(chosen, str) else None)


@functools.lru_cache(maxsize=256)
def _options(choices: tuple[Choice, ...], chosen: str | None) -> Markup:
    markup = []
    for choice in choices:
        value, label = (choice, choice) if isinstance(choice, str) else choice
        selected = " selected" if value == chosen else ""
        markup.append(f'<option value="{escape(value)}"{selected}>{escape(label)}</option>')
    return Markup("".join(markup))  # noqa: S704  # nosec B704  # values and labels escaped
