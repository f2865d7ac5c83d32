"""The TAXII OpenAPI document describes every route the server has, with its error answers."""

from __future__ import annotations

from starlette.routing import Route

from dtim.taxii.collections import COLLECTIONS
from dtim.taxii.http import TAXII_MEDIA_TYPE
from dtim.taxii.openapi import taxii_openapi
from dtim.taxii.server import TaxiiServer


def test_every_route_and_method_is_documented(server: TaxiiServer) -> None:
    document = taxii_openapi()
    served = {
        (route.path, method.lower())
        for route in server.app().routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == documented


def test_errors_are_documented_as_taxii_error_messages() -> None:
    for item in taxii_openapi()["paths"].values():
        for operation in item.values():
            errors = {code: r for code, r in operation["responses"].items() if code >= "400"}
            assert "401" in errors  # every route needs credentials
            for answer in errors.values():
                schema = answer["content"][TAXII_MEDIA_TYPE]["schema"]
                assert schema["required"] == ["title", "description", "http_status"]


def test_collection_parameter_names_every_collection() -> None:
    operation = taxii_openapi()["paths"]["/api/collections/{collection}/"]["get"]
    (parameter,) = operation["parameters"]
    assert set(parameter["schema"]["enum"]) == {key for c in COLLECTIONS for key in (c.alias, c.id)}
