"""A TLS rotation on a running ``dtim node run`` reaches both of its listeners.

``dtim keys rotate --tls`` re-issues the node certificate from the node CA while
the node runs; within a second or two every new connection, to the peer API and
to the admin API (served over HTTPS here), gets the new certificate, without a
restart.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.mesh.cluster import Mesh, MeshNode, dtim

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def mesh(mesh_of: Callable[..., Mesh]) -> Mesh:
    return mesh_of(1, outsider=False, settings={"DTIM__ADMIN__TLS": "true"})


def on_disk(node: MeshNode) -> bytes:
    """The node certificate in the home, DER."""
    pem = (node.home / "certs" / "node.crt").read_bytes()
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def presented(node: MeshNode, port: int) -> bytes | None:
    """The certificate a new TLS connection to ``port`` is given, DER (checked against the
    CA), or None while nothing listens there yet."""
    context = ssl.create_default_context(cafile=str(node.home / "certs" / "ca.crt"))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except ConnectionRefusedError:
        return None


def test_a_tls_rotation_reaches_the_peer_and_admin_listeners_without_a_restart(
    mesh: Mesh,
) -> None:
    node = mesh[0]
    before = on_disk(node)
    mesh.wait_for(
        lambda: presented(node, node.admin_port) == before == presented(node, node.port),
        "both listeners serve the node certificate (the admin API over HTTPS)",
        30,
    )
    process = node.process

    rotated = json.loads(dtim("keys", "rotate", "--tls", "--home", str(node.home), "--json").stdout)
    assert list(rotated["rotated"]) == ["tls"]
    after = on_disk(node)
    assert after != before

    mesh.wait_for(
        lambda: presented(node, node.port) == after, "the peer API presents the new certificate", 15
    )
    mesh.wait_for(
        lambda: presented(node, node.admin_port) == after,
        "the admin API presents the new certificate",
        15,
    )
    assert node.process is process
    assert node.alive()
