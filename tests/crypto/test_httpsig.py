"""RFC 9421 signature bases and RFC 9530 digests against the RFCs' own examples."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dtim.crypto.httpsig import (
    HttpMessage,
    check_content_digest,
    component,
    content_digest,
    signature_base,
)
from dtim.crypto.structured import parse_dictionary
from dtim.errors import SignatureError

# RFC 9421 appendix B.1.4 test-key-ed25519 (private seed) and B.2 test-request.
TEST_KEY_SEED = base64.urlsafe_b64decode("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU=")
TEST_REQUEST = HttpMessage(
    method="POST",
    scheme="https",
    authority="example.com",
    path="/foo",
    query="param=Value&Pet=dog",
    headers=[
        ("host", "example.com"),
        ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("content-type", "application/json"),
        (
            "content-digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        ("content-length", "18"),
    ],
)


def test_rfc9421_b26_ed25519_signature_is_reproduced_exactly() -> None:
    inputs = parse_dictionary(
        'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
        ';created=1618884473;keyid="test-key-ed25519"'
    )
    declared = inputs["sig-b26"]
    assert not isinstance(declared, type(None))
    base = signature_base(declared.items, declared.params, TEST_REQUEST)  # type: ignore[union-attr]  # an inner list here
    assert base == (
        b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
        b'"@method": POST\n'
        b'"@path": /foo\n'
        b'"@authority": example.com\n'
        b'"content-type": application/json\n'
        b'"content-length": 18\n'
        b'"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
        b'"content-length");created=1618884473;keyid="test-key-ed25519"'
    )
    signature = Ed25519PrivateKey.from_private_bytes(TEST_KEY_SEED).sign(base)
    assert base64.b64encode(signature).decode() == (
        "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
    )


def test_derived_components_of_rfc9421_section_2_2() -> None:
    comps = [
        component(n)
        for n in (
            "@method",
            "@target-uri",
            "@authority",
            "@scheme",
            "@request-target",
            "@path",
            "@query",
        )
    ]
    lines = signature_base(comps, (), TEST_REQUEST).decode().split("\n")
    assert lines[:7] == [
        '"@method": POST',
        '"@target-uri": https://example.com/foo?param=Value&Pet=dog',
        '"@authority": example.com',
        '"@scheme": https',
        '"@request-target": /foo?param=Value&Pet=dog',
        '"@path": /foo',
        '"@query": ?param=Value&Pet=dog',
    ]
    no_query = HttpMessage(method="GET", path="")
    assert signature_base([component("@query"), component("@path")], (), no_query).split(b"\n")[
        :2
    ] == [b'"@query": ?', b'"@path": /']


def test_request_bound_dictionary_member_component() -> None:
    request = HttpMessage(headers=[("signature", "sig1=:AAAA:, other=:BBBB:")])
    response = HttpMessage(status=200, headers=[("x-a", "  one "), ("x-a", "two")], request=request)
    base = signature_base(
        [component("@status"), component("x-a"), component("signature", req=True, key="sig1")],
        (("created", 1),),
        response,
    )
    assert base.decode().split("\n") == [
        '"@status": 200',
        '"x-a": one, two',
        '"signature";req;key="sig1": :AAAA:',
        '"@signature-params": ("@status" "x-a" "signature";req;key="sig1");created=1',
    ]


@pytest.mark.parametrize(
    ("comps", "message"),
    [
        ([component("x-missing")], "absent"),
        ([component("@method"), component("@method")], "twice"),
        ([component("@status")], "does not apply"),
        ([component("@unknown")], "unsupported derived"),
        ([component("Upper")], "lowercase"),
        ([component("x-a", sf=True)], "unsupported component parameter"),
        ([component("@method", key="a")], "fields only"),
        ([component("x-a", key="nope")], "no member"),
        ([component("x-a", req=True)], "needs the request"),
    ],
)
def test_signature_base_errors(comps: list, message: str) -> None:  # type: ignore[type-arg]  # items
    with pytest.raises(SignatureError, match=message):
        signature_base(comps, (), HttpMessage(method="GET", headers=[("x-a", "b=1")]))


def test_content_digest_rfc9530_example() -> None:
    assert content_digest(b'{"hello": "world"}') == (
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )
    check_content_digest(
        "sha-512=:AA==:, sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        b'{"hello": "world"}',
    )
    with pytest.raises(SignatureError, match="mismatch"):
        check_content_digest(content_digest(b"a"), b"b")
    with pytest.raises(SignatureError, match="missing"):
        check_content_digest(None, b"")
    with pytest.raises(SignatureError, match="no sha-256"):
        check_content_digest("sha-512=:AA==:", b"")
    with pytest.raises(SignatureError, match="malformed"):
        check_content_digest("sha-256=", b"")
