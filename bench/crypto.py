"""Benchmark the security core against its unprotected peer, measured in the same run.

1. Signed-request rate: requests/s of a real uvicorn HTTPS server (mTLS, own
   process, 127.0.0.1) with the signature guard against the same server with
   verification off, on two servers:
   - the node's peer API (``bench/crypto_node.py``): what ``dtim node run``
     serves, SQLite store and all; every request is a gossip push of about
     1 KiB of new reports, stored as a real push is. ``verify+sign`` is the
     node's own app, ``off`` the same stack without the signature guard (the
     peer named by its client certificate). Goal: overhead <= 15 %.
   - an empty route that answers at once: the guard's floor, in absolute
     terms (verify, and verify + signed response).
   The client pre-signs every request (fresh nonce each) and drives keep-alive
   TLS connections with raw asyncio streams, so the server is the bottleneck.
2. Audit-log append rate: encrypted records/s against plain buffered file
   appends of the same JSON. Goal: >= 30 % of plain.

Usage: .venv/bin/python bench/crypto.py [--n 3000] [--connections 8] [--records 200000]
                                        [--rounds 2] [--routes node,empty]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
from child_server import child_server, serve_and_announce
from crypto_node import (
    NODE_MODES,
    fresh_copy,
    make_node,
    node_requests,
    push_bodies,
    serve_node,
    signed_request,
)

from dtim.crypto.auditlog import AuditLog, timestamp
from dtim.crypto.certs import issue_node_certificates
from dtim.crypto.identity import create_identity, load_identity
from dtim.crypto.keyring import Keyring
from dtim.crypto.signatures import MessageSigner
from dtim.crypto.tls import client_context
from dtim.model.clock import SystemClock
from dtim.model.indicator import JsonValue

PATH = "/api/v1/indicators/gossip"
MODES = ("off", "verify", "verify+sign")
WARM_UP = 300
"""Requests sent before the timed ones (their own, never the timed ones again)."""


def serve(mode: str, root: Path) -> None:
    """Child process: run the server in ``mode`` and print its port."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from dtim.api.mtls import PeerCertificateGuard, TLSExtensionMixin
    from dtim.api.signatures import SignatureGuard
    from dtim.crypto.signatures import PeerKey, RequestVerifier, StaticPeerKeys
    from dtim.crypto.tls import PeerTrust
    from dtim.model.peer import PeerStatus

    class PeerH11Protocol(TLSExtensionMixin, H11Protocol):
        pass

    async def gossip(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"status": "ok", "received": len(body)})

    server_id = load_identity(root / "server" / "keys")
    client_id = load_identity(root / "client" / "keys")
    certs = root / "server" / "certs"
    client_ca = (root / "client" / "certs" / "ca.crt").read_text()
    trust = PeerTrust(certs / "node.crt", certs / "node.key", {client_id.node_id: [client_ca]})
    app = Starlette(routes=[Route(PATH, gossip, methods=["POST"])])
    guarded: object = app
    if mode != "off":
        keys = StaticPeerKeys(
            [PeerKey(client_id.node_id, client_id.public_key_b64, PeerStatus.APPROVED)]
        )
        verifier = RequestVerifier(server_id.node_id, keys)
        signer = MessageSigner(server_id) if mode == "verify+sign" else None
        guarded = SignatureGuard(app, verifier, signer=signer)
    final = PeerCertificateGuard(guarded, trust)  # type: ignore[arg-type]  # an ASGI app
    config = uvicorn.Config(
        final,
        host="127.0.0.1",
        port=0,
        http=PeerH11Protocol,
        ssl_context_factory=lambda _c, _d: trust.listener_context(),
        lifespan="off",
        log_config=None,
        log_level="error",
        access_log=False,
        ws="none",
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        await serve_and_announce(server)

    asyncio.run(main())


def make_material(root: Path) -> None:
    for name in ("server", "client"):
        identity = create_identity(root / name / "keys")
        issue_node_certificates(
            root / name / "certs", [], now=datetime.now(UTC), common_name=identity.node_id
        )


def build_requests(root: Path, count: int, port: int) -> list[bytes]:
    client = load_identity(root / "client" / "keys")
    server = load_identity(root / "server" / "keys")
    signer = MessageSigner(client)
    body = orjson.dumps({"indicators": [{"type": "ipv4", "value": "203.0.113.9"}], "pad": ""})
    body = body[:-2] + b"x" * (1024 - len(body)) + b'"}'
    assert len(body) == 1024
    return [signed_request(signer, PATH, body, server.node_id, port) for _ in range(count)]


async def drive(port: int, ctx: ssl.SSLContext, requests: list[bytes], connections: int) -> float:
    queue = list(reversed(requests))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
        )
        while queue:
            writer.write(queue.pop())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            statuses[status] = statuses.get(status, 0) + 1
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected statuses {statuses}")
    return len(requests) / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_rate(
    serve: list[str],
    make_requests: Callable[[bool, int], list[bytes]],
    client_certs: Path,
    server_ca: Path,
    n: int,
    connections: int,
) -> tuple[float, float]:
    """(wall-clock requests/s, requests per server CPU second) of one server process.

    ``serve`` are the arguments that start it; ``make_requests(warming_up, port)``
    builds the warm-up's requests, then the timed ones.
    """
    with child_server([__file__, *serve]) as (proc, port):
        ctx = client_context(
            client_certs / "node.crt",
            client_certs / "node.key",
            trusted_pems=[server_ca.read_text()],
        )
        asyncio.run(drive(port, ctx, make_requests(True, port), connections))
        requests = make_requests(False, port)
        cpu_before = cpu_seconds(proc.pid)
        wall = asyncio.run(drive(port, ctx, requests, connections))
        return wall, n / (cpu_seconds(proc.pid) - cpu_before)


def log_rates(root: Path, records: int) -> tuple[float, float]:
    clock = SystemClock()
    event: dict[str, JsonValue] = {
        "event": "indicators_shared",
        "ids": ["3f1c2a9e-4d3b-5e8f-9a7c-0d2e4b6a8c1f", "6f1c2a9e-4d3b-5e8f-9a7c-0d2e4b6a8c1e"],
        "peer_ids": ["ab" * 32],
    }
    plain_path = root / "plain.log"
    started = time.perf_counter()
    with plain_path.open("ab") as plain:
        for _ in range(records):
            plain.write(orjson.dumps({"at": timestamp(clock.now()), **event}) + b"\n")
    plain_rate = records / (time.perf_counter() - started)
    log = AuditLog(root / "logs", Keyring.create(root / "ring", now=clock.now()), clock)
    started = time.perf_counter()
    for _ in range(records):
        log.append(event)
    encrypted_rate = records / (time.perf_counter() - started)
    log.close()
    return plain_rate, encrypted_rate


def crypto_costs(root: Path, count: int) -> tuple[float, float]:
    """In-process CPU cost (µs) of one request verification and one response signature."""
    from dtim.crypto.signatures import PeerKey, RequestVerifier, StaticPeerKeys
    from dtim.model.peer import PeerStatus

    client = load_identity(root / "client" / "keys")
    server = load_identity(root / "server" / "keys")
    keys = StaticPeerKeys([PeerKey(client.node_id, client.public_key_b64, PeerStatus.APPROVED)])
    verifier = RequestVerifier(server.node_id, keys)
    body = b"x" * 1024
    signer = MessageSigner(client)
    signed = [
        signer.sign_request(method="POST", path=PATH, query="", body=body, recipient=server.node_id)
        for _ in range(count)
    ]

    async def verify_all() -> None:
        for item in signed:
            headers = [("content-type", "application/json"), *item.headers]
            await verifier.verify(method="POST", path=PATH, query="", headers=headers, body=body)

    started = time.process_time()
    asyncio.run(verify_all())
    verify_us = (time.process_time() - started) / count * 1e6
    responder = MessageSigner(server)
    started = time.process_time()
    for item in signed:
        responder.sign_response(
            status=200,
            body=b'{"status":"ok"}',
            requester=client.node_id,
            request_signature=item.signature,
        )
    return verify_us, (time.process_time() - started) / count * 1e6


def measure(
    modes: Sequence[str],
    run: Callable[[str], tuple[float, float]],
    rounds: int,
) -> tuple[dict[str, float], dict[str, float]]:
    """Best wall and per-server-CPU rates of each mode over ``rounds`` alternating rounds."""
    wall = {mode: 0.0 for mode in modes}
    per_cpu = {mode: 0.0 for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            rate, cpu_rate = run(mode)
            wall[mode] = max(wall[mode], rate)
            per_cpu[mode] = max(per_cpu[mode], cpu_rate)
    return wall, per_cpu


def print_rates(wall: dict[str, float], per_cpu: dict[str, float]) -> None:
    print("  mode           wall req/s  overhead   req per server-CPU-s  overhead")
    for mode in wall:
        print(
            f"  {mode:<12} {wall[mode]:10.0f}  {1 - wall[mode] / wall['off']:8.1%}"
            f"   {per_cpu[mode]:18.0f}  {1 - per_cpu[mode] / per_cpu['off']:8.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="timed requests per mode")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--records", type=int, default=200_000, help="audit records")
    parser.add_argument("--rounds", type=int, default=2, help="best of this many per mode")
    parser.add_argument(
        "--routes", default="node,empty", help="which servers to measure: node, empty or both"
    )
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--serve-node", choices=NODE_MODES, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.root)
        return
    if args.serve_node:
        serve_node(args.serve_node, args.root)
        return
    routes = set(args.routes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_material(root)
        client, client_certs = root / "client", root / "client" / "certs"
        header = (
            f"{args.n} requests, best of {args.rounds} rounds, {args.connections} keep-alive "
            f"mTLS connections, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        if "node" in routes:
            make_node(root, client)
            warm_up, timed = push_bodies(client, WARM_UP, 0), push_bodies(client, args.n, 10**6)
            runs = iter(range(2 * args.rounds))

            def run_node(mode: str) -> tuple[float, float]:
                home = fresh_copy(root, next(runs))  # every run starts from the same store
                return http_rate(
                    ["--serve-node", mode, "--root", str(home)],
                    lambda warming, port: node_requests(
                        client, home, warm_up if warming else timed, port
                    ),
                    client_certs,
                    home / "certs" / "ca.crt",
                    args.n,
                    args.connections,
                )

            wall, per_cpu = measure(NODE_MODES, run_node, args.rounds)
            size = sum(map(len, timed)) / args.n
            print(f"node's gossip push route, {size:.0f}-byte bodies of new reports, {header}")
            print_rates(wall, per_cpu)
            print(f"  server CPU per request with verification off: {1e6 / per_cpu['off']:.0f} us")
        if "empty" in routes:

            def run_empty(mode: str) -> tuple[float, float]:
                return http_rate(
                    ["--serve", mode, "--root", str(root)],
                    lambda warming, port: build_requests(
                        root, WARM_UP if warming else args.n, port
                    ),
                    client_certs,
                    root / "server" / "certs" / "ca.crt",
                    args.n,
                    args.connections,
                )

            wall, per_cpu = measure(MODES, run_empty, args.rounds)
            print(f"empty route (answers at once), 1 KiB bodies, {header}")
            print_rates(wall, per_cpu)
            verify_us, sign_us = crypto_costs(root, min(args.n, 2000))
            print(
                f"  in-process CPU per request: verify {verify_us:.0f} us, "
                f"response signature {sign_us:.0f} us; server CPU per request with "
                f"verification off: {1e6 / per_cpu['off']:.0f} us"
            )
        plain, encrypted = log_rates(root, args.records)
        print(f"audit log, {args.records} records")
        print(f"  plain buffered   {plain:10.0f} records/s")
        print(
            f"  encrypted        {encrypted:10.0f} records/s   = {encrypted / plain:.1%} of plain"
        )


if __name__ == "__main__":
    main()
