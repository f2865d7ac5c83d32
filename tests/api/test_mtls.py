"""mTLS over a real uvicorn server on 127.0.0.1: trusted, untrusted and missing client
certificates, and trust changes without restart."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dtim.api.mtls import (
    TLS_PEER_STATE_KEY,
    PeerCertificateGuard,
    client_certificate,
    tls_extension,
)
from dtim.crypto.tls import (
    ClientCertMode,
    NodeCertificates,
    PeerTrust,
    certificate_fingerprint,
    client_context,
    issue_node_certificates,
    rotate_node_certificate,
    server_context,
)
from tests.servers import running_server


@dataclass(frozen=True)
class Node:
    name: str
    files: NodeCertificates

    @property
    def ca_pem(self) -> str:
        return self.files.ca_cert.read_text()

    def client(self, trust: Node) -> ssl.SSLContext:
        return client_context(self.files.cert, self.files.key, trusted_pems=[trust.ca_pem])


def make_node(tmp_path: Path, name: str) -> Node:
    files = issue_node_certificates(
        tmp_path / name / "certs", [f"{name}.example"], now=datetime.now(UTC), common_name=name
    )
    return Node(name, files)


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"peer": request.state._state.get(TLS_PEER_STATE_KEY)})


def make_app(trust: PeerTrust) -> PeerCertificateGuard:
    inner = Starlette(routes=[Route("/whoami", whoami), Route("/public", whoami)])
    return PeerCertificateGuard(inner, trust, exempt_paths=("/public",))


async def test_mtls_trusted_untrusted_none_and_runtime_changes(tmp_path: Path) -> None:
    server, alice, mallory = (make_node(tmp_path, n) for n in ("server", "alice", "mallory"))
    trust = PeerTrust(server.files.cert, server.files.key, {"alice": [alice.ca_pem]})
    with running_server(make_app(trust), ssl_context=trust.listener_context()) as srv:
        url = srv.url("/whoami")
        # Trusted client certificate: accepted and mapped to its peer.
        async with httpx.AsyncClient(verify=alice.client(server)) as client:
            response = await client.get(url)
            assert response.status_code == 200
            assert response.json() == {"peer": "alice"}
            assert (
                response.extensions["network_stream"].get_extra_info("ssl_object").version()
                == "TLSv1.3"
            )

            # No client certificate: the handshake passes, the guard answers 401.
            no_cert = client_context(None, None, trusted_pems=[server.ca_pem])
            async with httpx.AsyncClient(verify=no_cert) as anonymous:
                response = await anonymous.get(url)
                assert response.status_code == 401
                assert response.json()["reason"] == "no client certificate presented"
                assert (await anonymous.get(srv.url("/public"))).status_code == 200

            # Certificate from an unapproved CA: refused during the TLS handshake.
            async with httpx.AsyncClient(verify=mallory.client(server)) as intruder:
                with pytest.raises(httpx.TransportError):
                    await intruder.get(url)

            # Approving mallory takes effect on the next connection, no restart.
            trust.set_peer("mallory", [mallory.ca_pem])
            async with httpx.AsyncClient(verify=mallory.client(server)) as approved:
                assert (await approved.get(url)).json() == {"peer": "mallory"}

            # Revoking alice: her open keep-alive connection gets 401 on its next
            # request, and a new connection fails the handshake.
            trust.remove_peer("alice")
            response = await client.get(url)
            assert response.status_code == 401
            assert "approved peer" in response.json()["reason"]
        async with httpx.AsyncClient(verify=alice.client(server)) as fresh:
            with pytest.raises(httpx.TransportError):
                await fresh.get(url)


async def test_server_certificate_rotation_without_restart(tmp_path: Path) -> None:
    server, alice = make_node(tmp_path, "server"), make_node(tmp_path, "alice")
    trust = PeerTrust(server.files.cert, server.files.key, {"alice": [alice.ca_pem]})
    with running_server(make_app(trust), ssl_context=trust.listener_context()) as srv:

        async def served_fingerprint() -> str:
            async with httpx.AsyncClient(verify=alice.client(server)) as client:
                response = await client.get(srv.url("/whoami"))
                assert response.status_code == 200
                ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
                return certificate_fingerprint(ssl_object.getpeercert(binary_form=True))

        first = await served_fingerprint()
        rotate_node_certificate(server.files.cert.parent, now=datetime.now(UTC))
        trust.reload_certificate()
        second = await served_fingerprint()
        assert first != second
        assert second == certificate_fingerprint(server.files.cert.read_bytes())


async def test_client_refuses_a_server_it_did_not_pin(tmp_path: Path) -> None:
    server, alice, other = (make_node(tmp_path, n) for n in ("server", "alice", "other"))
    ctx = server_context(server.files.cert, server.files.key, client_cert=ClientCertMode.NONE)
    with running_server(
        make_app(PeerTrust(server.files.cert, server.files.key)), ssl_context=ctx
    ) as srv:
        async with httpx.AsyncClient(verify=alice.client(other)) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(srv.url("/public"))
        async with httpx.AsyncClient(verify=alice.client(server)) as client:
            assert (await client.get(srv.url("/public"))).status_code == 200


def test_scope_without_tls_has_no_certificate() -> None:
    assert client_certificate({"type": "http"}) is None
    assert (
        client_certificate({"type": "http", "extensions": {"tls": {"client_cert_chain": []}}})
        is None
    )
    assert (
        client_certificate({"type": "http", "extensions": {"tls": {"client_cert_chain": ["junk"]}}})
        is None
    )
    assert callable(tls_extension)
