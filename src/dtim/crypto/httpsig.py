"""RFC 9421 signature bases and RFC 9530 content digests, independent of any HTTP library.

:func:`signature_base` implements RFC 9421 section 2.5 for the derived
components ``@method``, ``@authority``, ``@scheme``, ``@target-uri``,
``@request-target``, ``@path``, ``@query`` and ``@status`` (section 2.2), HTTP
fields (section 2.1) including the ``key`` (dictionary member) and ``req``
(request-bound, section 2.4) parameters. :mod:`dtim.crypto.signatures` builds
DTIM's request/response policy on top of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from dtim.crypto.structured import (
    Item,
    Params,
    StructuredFieldError,
    Token,
    parse_dictionary,
    serialize_item,
    serialize_member,
    serialize_params,
)
from dtim.errors import SignatureError

Headers = Sequence[tuple[str, str]]
"""Field lines as (lowercase name, value) pairs, in message order."""


@dataclass(frozen=True, slots=True)
class HttpMessage:
    """What a signature base can cover in a request or a response.

    Attributes:
        method: request method (requests only).
        scheme: ``http`` / ``https``.
        authority: host[:port] as sent (``Host`` header).
        path: the raw (still percent-encoded) path; empty means ``/``.
        query: the raw query string without ``?``; None when absent.
        status: response status (responses only).
        headers: field lines, names lowercase.
        request: for a response, the request it answers (``;req`` components).
    """

    method: str | None = None
    scheme: str | None = None
    authority: str | None = None
    path: str | None = None
    query: str | None = None
    status: int | None = None
    headers: Headers = ()
    request: HttpMessage | None = field(default=None, repr=False)


def component(name: str, **params: str | bool) -> Item:
    """A component identifier: ``component("signature", req=True, key="dtim")``."""
    return Item(name, tuple(params.items()))


def field_value(headers: Headers, name: str) -> str | None:
    """RFC 9421 section 2.1: field lines trimmed and joined with ``", "``; None if absent."""
    values = [value.strip(" \t") for key, value in headers if key == name]
    return ", ".join(values) if values else None


def combine_fields(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Every field's combined value (:func:`field_value`), by lowercase name, in one pass."""
    fields: dict[str, str] = {}
    for name, value in headers:
        text = value.strip(" \t")
        previous = fields.get(name)
        fields[name] = text if previous is None else f"{previous}, {text}"
    return fields


def signature_params(components: Sequence[Item], params: Params) -> str:
    """The ``@signature-params`` value: the inner list of components plus parameters."""
    return _plan_of(tuple(components)).inner + serialize_params(params)


def signature_base(components: Sequence[Item], params: Params, message: HttpMessage) -> bytes:
    """The RFC 9421 signature base (section 2.5) of ``message``.

    Raises:
        SignatureError: a component is missing from the message, repeated, or unsupported.
    """
    components = tuple(components)
    plan = _plan_of(components)
    parts: list[str] = []
    fields: dict[int, dict[str, str]] = {}
    for index, identifier in enumerate(components):
        text = plan.texts[index]
        if index == plan.repeat:
            raise SignatureError(f"malformed signature: component {text} is covered twice")
        name = plan.names[index]
        if not name:
            value = _component_value(identifier, message, fields)
        elif name[0] == "@":
            value = _derived(name, message)
        else:
            found = _fields_of(message, fields).get(name)
            if found is None:
                raise SignatureError(f"malformed signature: covered field {name!r} is absent")
            value = found
        parts += (text, ": ", value, "\n")
    parts += ('"@signature-params": ', plan.inner, serialize_params(params))
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Plan:
    texts: tuple[str, ...]
    """Each component identifier, serialised."""
    names: tuple[str, ...]
    """A component's name when it is lowercase and has no parameters (the common case), else ""."""
    repeat: int
    """Index of the first component covered a second time (-1: none)."""
    inner: str
    """The inner list of ``@signature-params`` without its parameters."""


_PLANS: dict[int, tuple[tuple[Item, ...], _Plan]] = {}


def _plan_of(components: tuple[Item, ...]) -> _Plan:
    # By identity first: the parser and the signer hand over the same tuple object each
    # time, and hashing it (a Python __hash__ per item) costs more than the rest.
    hit = _PLANS.get(id(components))
    if hit is not None and hit[0] is components:
        return hit[1]
    plan = _plan(components)
    if len(_PLANS) >= 256:
        _PLANS.clear()
    _PLANS[id(components)] = (components, plan)  # holding the tuple keeps its id unique
    return plan


@lru_cache(maxsize=256)
def _plan(components: tuple[Item, ...]) -> _Plan:
    # Components repeat on every request; their serialisation and checks need not.
    texts = tuple(serialize_item(c) for c in components)
    repeat = next((i for i, text in enumerate(texts) if text in texts[:i]), -1)
    names = tuple(
        c.value if not c.params and isinstance(c.value, str) and c.value == c.value.lower() else ""
        for c in components
    )
    return _Plan(texts, names, repeat, "(" + " ".join(texts) + ")")


def _fields_of(message: HttpMessage, cache: dict[int, dict[str, str]]) -> dict[str, str]:
    combined = cache.get(id(message))
    if combined is None:
        combined = cache[id(message)] = combine_fields(message.headers)
    return combined


def _component_value(
    identifier: Item, message: HttpMessage, cache: dict[int, dict[str, str]]
) -> str:
    name = identifier.value
    if not isinstance(name, str) or name != name.lower() or not name:
        raise SignatureError("malformed signature: component names are lowercase strings")
    params = dict(identifier.params)
    if params and not set(params) <= {"req", "key"}:
        unknown = set(params) - {"req", "key"}
        raise SignatureError(f"malformed signature: unsupported component parameter {unknown}")
    if params.get("req") is True:
        if message.request is None:
            raise SignatureError(f"malformed signature: {name};req needs the request")
        message = message.request
    if name.startswith("@"):
        if "key" in params:
            raise SignatureError("malformed signature: 'key' applies to fields only")
        return _derived(name, message)
    value = _fields_of(message, cache).get(name)
    if value is None:
        raise SignatureError(f"malformed signature: covered field {name!r} is absent")
    key = params.get("key")
    if key is None:
        return value
    if not isinstance(key, str):
        raise SignatureError("malformed signature: 'key' must be a string")
    try:
        member = parse_dictionary(value).get(key)
    except StructuredFieldError as exc:
        raise SignatureError(f"malformed signature: field {name!r}: {exc.reason}") from None
    if member is None:
        raise SignatureError(f"malformed signature: {name!r} has no member {key!r}")
    return serialize_member(member)


def _derived(name: str, m: HttpMessage) -> str:
    value: str | None
    if name == "@method":
        value = m.method
    elif name == "@path":
        value = m.path or "/"
    elif name == "@query":
        value = "?" + (m.query or "")
    elif name == "@status":
        value = str(m.status) if m.status is not None else None
    elif name == "@authority":
        value = m.authority.lower() if m.authority else None
    elif name == "@scheme":
        value = m.scheme.lower() if m.scheme else None
    elif name == "@request-target":
        value = (m.path or "/") + ("?" + m.query if m.query else "")
    elif name == "@target-uri":
        value = (
            f"{m.scheme.lower()}://{m.authority.lower()}{m.path or '/'}"
            + ("?" + m.query if m.query else "")
            if m.scheme and m.authority
            else None
        )
    else:
        raise SignatureError(f"malformed signature: unsupported derived component {name!r}")
    if value is None:
        raise SignatureError(f"malformed signature: {name} does not apply to this message")
    return value


def content_digest(body: bytes) -> str:
    """The RFC 9530 ``Content-Digest`` value for ``body`` (``sha-256=:<b64>:``)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def check_content_digest(value: str | None, body: bytes) -> None:
    """Check a ``Content-Digest`` header against ``body``; sha-256 is required.

    Raises:
        SignatureError: absent, malformed, without sha-256, or not matching the body.
    """
    if value is None:
        raise SignatureError("missing content digest")
    try:
        members = parse_dictionary(value)
    except StructuredFieldError:
        raise SignatureError("malformed content digest") from None
    member = members.get("sha-256")
    if not isinstance(member, Item) or not isinstance(member.value, bytes):
        raise SignatureError("content digest has no sha-256 value")
    if not hmac.compare_digest(member.value, hashlib.sha256(body).digest()):
        raise SignatureError("content digest mismatch: the body is not what was signed")


def is_token(value: object, expected: str) -> bool:
    """Whether ``value`` is the sf-token or string ``expected``."""
    return (isinstance(value, Token) and value.value == expected) or value == expected
