"""The OpenAPI 3.1 description of the TAXII 2.1 routes of :class:`dtim.taxii.server.TaxiiServer`.

TAXII has no OpenAPI document of its own; this one states what DTIM's server
answers, so clients and API fuzzers can hold it to it. Paths are relative to
the mount point (``/taxii2``). Resources follow OASIS TAXII 2.1 §4 and §5;
every error is the spec's error message (§3.6.1) as :mod:`dtim.taxii.http`
writes it: ``{"title", "description", "http_status"}``.
"""

from __future__ import annotations

from typing import Any

from dtim.taxii.collections import COLLECTIONS
from dtim.taxii.http import MAX_MATCH_VALUES, TAXII_MEDIA_TYPE

_STRING: dict[str, Any] = {"type": "string"}
_STRINGS: dict[str, Any] = {"type": "array", "items": _STRING}
_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["title", "description", "http_status"],
    "additionalProperties": False,
    "properties": {"title": _STRING, "description": _STRING, "http_status": _STRING},
}
_ERROR_TEXT = {
    400: "Bad request: a filter, limit, next token or body that cannot be used, or a NUL "
    "character in the path or query",
    401: "No credentials, or wrong ones (HTTP Basic, or a registered client certificate)",
    403: "The account may not read (or write) this collection",
    404: "No such collection, object or status resource for this account",
    406: "The Accept header names no TAXII 2.1 media type",
    413: "The body is larger than max_content_length",
    415: "A POST body that is not application/taxii+json;version=2.1",
    422: "JSON that is not a TAXII envelope of STIX objects",
}
_COLLECTION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "title", "can_read", "can_write"],
    "properties": {
        "id": _STRING,
        "title": _STRING,
        "description": _STRING,
        "alias": _STRING,
        "can_read": {"type": "boolean"},
        "can_write": {"type": "boolean"},
        "media_types": _STRINGS,
    },
}
_PAGED = {"more": {"type": "boolean"}, "next": _STRING}
_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "properties": {**_PAGED, "objects": {"type": "array", "items": {"type": "object"}}},
}
_MANIFEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_PAGED,
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "date_added", "version"],
                "properties": {
                    "id": _STRING,
                    "date_added": _STRING,
                    "version": _STRING,
                    "media_type": _STRING,
                },
            },
        },
    },
}
_VERSIONS: dict[str, Any] = {"type": "object", "properties": {**_PAGED, "versions": _STRINGS}}
_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["id", "status", "total_count", "success_count", "failure_count", "pending_count"],
    "properties": {
        "id": _STRING,
        "status": {"enum": ["complete", "pending"]},
        "request_timestamp": _STRING,
        "total_count": {"type": "integer"},
        "success_count": {"type": "integer"},
        "successes": {"type": "array", "items": {"type": "object"}},
        "failure_count": {"type": "integer"},
        "failures": {"type": "array", "items": {"type": "object"}},
        "pending_count": {"type": "integer"},
        "pendings": {"type": "array", "items": {"type": "object"}},
    },
}
_PAGE_HEADERS = {
    name: {"schema": _STRING, "description": f"{edge} date_added of the page's objects"}
    for name, edge in (("X-TAXII-Date-Added-First", "First"), ("X-TAXII-Date-Added-Last", "Last"))
}


def _collection_parameter() -> dict[str, Any]:
    keys = [key for c in COLLECTIONS for key in (c.alias, c.id)]
    return {
        "name": "collection",
        "in": "path",
        "required": True,
        "description": "A collection's id or alias.",
        "schema": {"type": "string", "enum": keys},
    }


def _filters(*, with_id: bool = True) -> list[dict[str, Any]]:
    listing = {"type": "string", "minLength": 1}
    params: list[dict[str, Any]] = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {"name": "added_after", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "next", "in": "query", "schema": _STRING},
        {"name": "match[type]", "in": "query", "schema": listing},
        {"name": "match[version]", "in": "query", "schema": listing},
        {"name": "match[spec_version]", "in": "query", "schema": listing},
    ]
    if with_id:
        params.insert(3, {"name": "match[id]", "in": "query", "schema": listing})
    for param in params:
        if param["name"].startswith("match["):
            param["description"] = f"Comma-separated, at most {MAX_MATCH_VALUES} values."
    return params


def _taxii(schema: dict[str, Any]) -> dict[str, Any]:
    return {TAXII_MEDIA_TYPE: {"schema": schema}}


def _operation(
    summary: str,
    body: dict[str, Any],
    errors: tuple[int, ...],
    *,
    status: int = 200,
    parameters: list[dict[str, Any]] | None = None,
    headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": summary, "content": _taxii(body)}
    if headers:
        ok["headers"] = headers
    responses: dict[str, Any] = {str(status): ok}
    for code in (401, *errors):
        responses[str(code)] = {"description": _ERROR_TEXT[code], "content": _taxii(_ERROR)}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    return operation


def taxii_openapi(title: str = "DTIM TAXII server") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the TAXII routes (paths below the ``/taxii2`` mount)."""
    collection = _collection_parameter()
    obj = {"name": "object", "in": "path", "required": True, "schema": _STRING}
    status = {"name": "status", "in": "path", "required": True, "schema": _STRING}
    read = (400, 403, 404, 406)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "2.1"},
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
        "security": [{"basic": []}],
        "paths": {
            "/": {
                "get": _operation(
                    "Discovery (§4.1)",
                    {
                        "type": "object",
                        "required": ["title"],
                        "properties": {
                            "title": _STRING,
                            "description": _STRING,
                            "default": _STRING,
                            "api_roots": _STRINGS,
                        },
                    },
                    (400, 406),
                )
            },
            "/api/": {
                "get": _operation(
                    "API root (§4.2)",
                    {
                        "type": "object",
                        "required": ["title", "versions", "max_content_length"],
                        "properties": {
                            "title": _STRING,
                            "description": _STRING,
                            "versions": _STRINGS,
                            "max_content_length": {"type": "integer"},
                        },
                    },
                    (400, 406),
                )
            },
            "/api/status/{status}/": {
                "get": _operation(
                    "Status of an add (§4.3)", _STATUS, (400, 404, 406), parameters=[status]
                )
            },
            "/api/collections/": {
                "get": _operation(
                    "Collections (§5.1)",
                    {
                        "type": "object",
                        "properties": {"collections": {"type": "array", "items": _COLLECTION}},
                    },
                    (400, 406),
                )
            },
            "/api/collections/{collection}/": {
                "get": _operation(
                    "One collection (§5.2)", _COLLECTION, (400, 404, 406), parameters=[collection]
                )
            },
            "/api/collections/{collection}/manifest/": {
                "get": _operation(
                    "Manifest (§5.3)",
                    _MANIFEST,
                    read,
                    parameters=[collection, *_filters()],
                    headers=_PAGE_HEADERS,
                )
            },
            "/api/collections/{collection}/objects/": {
                "get": _operation(
                    "Get objects (§5.4)",
                    _ENVELOPE,
                    read,
                    parameters=[collection, *_filters()],
                    headers=_PAGE_HEADERS,
                ),
                "post": {
                    **_operation(
                        "Add objects (§5.5)",
                        _STATUS,
                        (400, 403, 404, 413, 415, 422),
                        status=202,
                        parameters=[collection],
                    ),
                    "requestBody": {
                        "required": True,
                        "content": _taxii(
                            {
                                "type": "object",
                                "required": ["objects"],
                                "properties": {
                                    "objects": {"type": "array", "items": {"type": "object"}}
                                },
                            }
                        ),
                    },
                },
            },
            "/api/collections/{collection}/objects/{object}/": {
                "get": _operation(
                    "Get an object (§5.6)",
                    _ENVELOPE,
                    read,
                    parameters=[collection, obj, *_filters(with_id=False)],
                    headers=_PAGE_HEADERS,
                )
            },
            "/api/collections/{collection}/objects/{object}/versions/": {
                "get": _operation(
                    "Object versions (§5.8)",
                    _VERSIONS,
                    read,
                    parameters=[collection, obj, *_filters(with_id=False)],
                    headers=_PAGE_HEADERS,
                )
            },
        },
    }
