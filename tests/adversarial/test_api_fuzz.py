"""Schemathesis against the OpenAPI documents of the peer API, the admin API, TAXII and the
registry, each on a real server on 127.0.0.1: no 5xx, every error in the API's documented
JSON error shape, responses as their schemas say. The admin API and TAXII run a second time
on PostgreSQL when ``DTIM_TEST_DATABASE_URL`` is set: it refuses values SQLite stores.

Inputs are seeded and derandomized (the same every run) and bounded so the file runs in
well under 90 s; ``-m slow`` tries many more. Each test prints how many inputs it sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Case

from dtim.api.peer import PUBLIC_PATHS
from dtim.crypto.bodysig import sign_body
from dtim.crypto.identity import NodeIdentity
from dtim.crypto.signatures import MessageSigner
from dtim.errors import SignatureError
from dtim.gossip.transport import GOSSIP_PATH
from dtim.taxii.openapi import taxii_openapi
from tests.adversarial.background import in_background
from tests.adversarial.fuzzing import (
    TIMEOUT,
    FuzzReport,
    FuzzTarget,
    add_nul,
    error_shape,
    fuzz,
    is_positive,
)
from tests.adversarial.signing import SignedRequests
from tests.adversarial.targets import (
    TAXII_PASSWORD,
    TAXII_USER,
    AdminTarget,
    PeerTarget,
    TlsTarget,
    admin_api,
    peer_api,
    registry_api,
    taxii_api,
)
from tests.conftest import postgres_schema

FAST = 8
"""Inputs per operation and generation mode in the default run."""
DEEP = 100
"""Inputs per operation and generation mode in the slow run."""

DTIM_ERROR = error_shape({"error": str, "reason": str}, {"field": str})
"""The peer API's and the registry's errors (dtim.api.errors, dtim.registry.http)."""
ADMIN_ERROR = error_shape({"error": str}, {"field": str})
"""The admin API's errors (dtim.api.admin): the message, and the field when one is at fault."""
TAXII_ERROR = error_shape({"title": str, "description": str, "http_status": str})
"""TAXII 2.1 error messages (§3.6.1, dtim.taxii.http)."""


def _schema(document: dict[str, Any], base_url: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=base_url)
    return schema


def _served_schema(url: str, base_url: str, verify: str | bool = True) -> schemathesis.BaseSchema:
    response = requests.get(url, verify=verify, timeout=TIMEOUT)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return _schema(response.json(), base_url)


def _run(target: FuzzTarget, examples: int) -> FuzzReport:
    report = fuzz(target, examples=examples)
    print(f"\n{report.summary()}\n{report.details()}")
    assert report.total >= examples  # the servers were really exercised
    return report


# -- peer API: mTLS as the approved peer, every request signed, signed answers checked ---------


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerTarget]:
    root = tmp_path_factory.mktemp("fuzz-peer")
    with in_background(lambda: peer_api(root)) as target:
        yield target


def peer_target(target: PeerTarget, session: requests.Session) -> FuzzTarget:
    """The node's peer API, called by ``alice`` (approved) over mTLS with signed requests."""
    alice = target.peer
    auth = SignedRequests(
        MessageSigner(alice.identity),
        recipient=target.node.id,
        responder_public_key=target.node.identity.public_key_b64,
        unsigned_paths=PUBLIC_PATHS,
    )
    ca = str(target.node.home.tls_ca)
    cert = (str(alice.home.tls_cert), str(alice.home.tls_key))

    def send(case: Case[Any]) -> schemathesis.Response:
        return case.call(session=session, verify=ca, cert=cert, auth=auth, timeout=TIMEOUT)

    def prepare(case: Case[Any]) -> None:
        # Pushed documents carry alice's body signature too, so fuzzed reports reach the
        # decoder and the inbox instead of stopping at the signature check.
        if case.path == GOSSIP_PATH and isinstance(case.body, dict) and is_positive(case):
            # A body JCS cannot represent (NaN, huge integers) is sent as generated.
            with contextlib.suppress(SignatureError):
                case.body = sign_body(case.body, alice.identity)

    def finish() -> None:
        assert auth.verified > 0, "no signed answer was checked"

    schema = _served_schema(target.url + "/openapi.json", target.url, ca)
    return FuzzTarget("peer API", schema, send, DTIM_ERROR, prepare=prepare, finish=finish)


# -- admin API: an admin API token -------------------------------------------------------------

ADMIN_SKIP = {
    "GET /login": "the browser's HTML login form (tests/api/test_admin.py)",
    "POST /login": "the browser's HTML login form (tests/api/test_admin.py)",
    "POST /logout": "the browser's HTML logout form (tests/api/test_admin.py)",
}


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminTarget]:
    root = tmp_path_factory.mktemp("fuzz-admin")
    with in_background(lambda: admin_api(root)) as target:
        yield target


@pytest.fixture(scope="module")
def admin_on_postgresql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminTarget]:
    """:func:`admin` on PostgreSQL."""
    root = tmp_path_factory.mktemp("fuzz-admin-pg")
    with postgres_schema() as url, in_background(lambda: admin_api(root, url)) as target:
        yield target


def admin_target(target: AdminTarget, session: requests.Session) -> FuzzTarget:
    """The admin JSON API under /api/admin with a valid admin API token."""
    headers = {"Authorization": f"Bearer {target.token}"}

    def send(case: Case[Any]) -> schemathesis.Response:
        return case.call(session=session, headers=headers, timeout=TIMEOUT)

    listed = session.get(
        target.url + "/api/admin/indicators",
        params={"limit": 100},
        headers=headers,
        timeout=TIMEOUT,
    ).json()["items"]
    grouped = session.get(target.url + "/api/admin/peers", headers=headers, timeout=TIMEOUT).json()
    known = {
        "indicator_id": [item["id"] for item in listed],
        "peer_id": [peer["id"] for peers in grouped.values() for peer in peers],
    }
    assert all(known.values()), known
    sent = [0]

    def prepare(case: Case[Any]) -> None:
        # Every other case names a real indicator or peer (and adds a real indicator value),
        # so fuzzed fields reach the code behind the 404s and the value check.
        sent[0] += 1
        if sent[0] % 4 == 1 and add_nul(case):
            return
        if sent[0] % 2 or not is_positive(case):
            return
        for name, ids in known.items():
            if name in case.path_parameters:
                case.path_parameters[name] = ids[sent[0] % len(ids)]
        body = case.body
        if case.path == "/api/admin/indicators" and isinstance(body, dict) and "value" in body:
            body["value"] = f"45.155.{sent[0] // 250 % 250}.{sent[0] % 250 + 1}"

    schema = _served_schema(target.url + "/openapi.json", target.url)
    return FuzzTarget("admin API", schema, send, ADMIN_ERROR, prepare=prepare, skip=ADMIN_SKIP)


# -- TAXII 2.1: HTTP Basic as a reading and writing account -------------------------------------


@pytest.fixture(scope="module")
def taxii(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsTarget]:
    root = tmp_path_factory.mktemp("fuzz-taxii")
    with in_background(lambda: taxii_api(root)) as target:
        yield target


@pytest.fixture(scope="module")
def taxii_on_postgresql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsTarget]:
    """:func:`taxii` on PostgreSQL."""
    root = tmp_path_factory.mktemp("fuzz-taxii-pg")
    with postgres_schema() as url, in_background(lambda: taxii_api(root, url)) as target:
        yield target


def taxii_target(target: TlsTarget, session: requests.Session) -> FuzzTarget:
    """The TAXII routes at /taxii2, described by :func:`dtim.taxii.openapi.taxii_openapi`."""

    ca = str(target.ca_file)

    def send(case: Case[Any]) -> schemathesis.Response:
        return case.call(session=session, verify=ca, timeout=TIMEOUT)

    green = f"{target.url}/taxii2/api/collections/tlp-green/objects/"
    listed = session.get(
        green, auth=(TAXII_USER, TAXII_PASSWORD), verify=ca, timeout=TIMEOUT
    ).json()["objects"]
    objects = [obj["id"] for obj in listed if obj["type"] in ("indicator", "sighting")]
    assert objects
    sent = [0]

    def prepare(case: Case[Any]) -> None:
        # Every other object request names an object that is there, so the filters and
        # paging around it run instead of stopping at 404.
        sent[0] += 1
        if sent[0] % 4 == 1 and add_nul(case):
            return
        if sent[0] % 2 == 0 and "object" in case.path_parameters and is_positive(case):
            case.path_parameters["collection"] = "tlp-green"
            case.path_parameters["object"] = objects[sent[0] % len(objects)]

    schema = _schema(taxii_openapi(), target.url + "/taxii2")
    # Credentials through schemathesis, which leaves them out where it tests their absence.
    schema.config.update(basic_auth=(TAXII_USER, TAXII_PASSWORD))
    return FuzzTarget("TAXII", schema, send, TAXII_ERROR, prepare=prepare)


# -- registry: requests signed by a real node key ---------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsTarget]:
    root = tmp_path_factory.mktemp("fuzz-registry")
    with in_background(lambda: registry_api(root)) as target:
        yield target


def registry_target(target: TlsTarget, session: requests.Session) -> FuzzTarget:
    """The registry, every request signed by a node key; bodies name that key."""
    node: NodeIdentity = target.extra
    auth = SignedRequests(MessageSigner(node), recipient=target.identity.node_id)
    ca = str(target.ca_file)

    def send(case: Case[Any]) -> schemathesis.Response:
        return case.call(session=session, verify=ca, auth=auth, timeout=TIMEOUT)

    def prepare(case: Case[Any]) -> None:
        # The registry only reads statements from the key that signed the request: name it,
        # so fuzzed statements get past key possession and reach statement checks.
        if isinstance(case.body, dict) and is_positive(case):
            key = node.public_key_b64
            if isinstance(case.body.get("public_key"), str):
                case.body["public_key"] = key
            statement = case.body.get("statement")
            if isinstance(statement, dict) and isinstance(statement.get("public_key"), str):
                statement["public_key"] = key
        if "node_id" in case.path_parameters and is_positive(case):
            case.path_parameters["node_id"] = node.node_id

    schema = _served_schema(target.url + "/openapi.json", target.url, ca)
    return FuzzTarget("registry", schema, send, DTIM_ERROR, prepare=prepare)


# -- the runs ----------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[Any, requests.Session], FuzzTarget]] = {
    "peer": peer_target,
    "admin": admin_target,
    "admin_on_postgresql": admin_target,
    "taxii": taxii_target,
    "taxii_on_postgresql": taxii_target,
    "registry": registry_target,
}


@pytest.mark.parametrize("api", sorted(BUILDERS))
def test_api_fuzz(api: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(api)
    with requests.Session() as session:
        _run(BUILDERS[api](server, session), FAST)


@pytest.mark.slow
@pytest.mark.parametrize("api", sorted(BUILDERS))
def test_api_fuzz_deep(api: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(api)
    with requests.Session() as session:
        _run(BUILDERS[api](server, session), DEEP)


def test_peer_routes_document_their_refusals(peer: PeerTarget) -> None:
    """The guards' answers (401, 413, 429) and the routes' own are in the OpenAPI document."""
    ca = str(peer.node.home.tls_ca)
    document = requests.get(peer.url + "/openapi.json", verify=ca, timeout=TIMEOUT).json()
    error = {"$ref": "#/components/schemas/ErrorModel"}
    for path, item in document["paths"].items():
        for operation in item.values():
            codes = set(operation["responses"])
            if path in PUBLIC_PATHS:
                continue
            assert codes >= {"200", "400", "401", "403", "413", "422", "429", "503"}, path
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == error
    assert set(document["components"]["schemas"]["ErrorModel"]["required"]) == {"error", "reason"}
