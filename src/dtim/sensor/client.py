"""Submitting buffered batches to the node's admin API over TLS, with a timeout on every call.

The node's certificate is checked against ``--ca`` (the node's CA, usually
``certs/ca.crt`` of the node home) or, without it, the system trust store.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import httpx
import orjson

from dtim.errors import ConfigError, DTIMError
from dtim.model.clock import iso
from dtim.sensor.queue import QueuedBatch

SIGHTINGS_PATH = "/api/v1/sensors/sightings"


class NodeUnreachable(DTIMError):
    """The node did not answer, or answered that it cannot take batches now (5xx, 429)."""


class SubmissionRefused(DTIMError):
    """The node refused the request (4xx): the token, the size or the content."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"the node refused the batches ({status}): {reason}")


def tls_context(ca: Path | None) -> ssl.SSLContext:
    """Verify the node against ``ca`` (a PEM file), or the system store without it.

    Raises:
        ConfigError: the CA file is missing or not a certificate.
    """
    try:
        return ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use {ca} as the node's CA: {exc}", key="--ca") from None


def request_body(batches: Sequence[QueuedBatch]) -> bytes:
    """The JSON request for ``batches`` (their sightings are already JSON)."""
    parts = [
        b'{"batch_id":'
        + orjson.dumps(b.batch_id)
        + b',"created":'
        + orjson.dumps(iso(datetime.fromtimestamp(b.created, UTC)))
        + b',"sightings":'
        + b.body
        + b"}"
        for b in batches
    ]
    return b'{"batches":[' + b",".join(parts) + b"]}"


class NodeClient:
    """An HTTPS client of one node's sensor endpoint; use ``async with``.

    Args:
        node_url: the node's admin API base URL (``https://node.example.org:3031``).
        token: the sensor token from ``dtim sensor token add``.
        verify: the TLS context (see :func:`tls_context`).
        timeout: seconds for every call (connect, read, write).
    """

    def __init__(
        self, node_url: str, token: str, *, verify: ssl.SSLContext, timeout: float = 10.0
    ) -> None:
        if not node_url.startswith("https://"):
            raise ConfigError(
                f"the node URL must start with https:// (got {node_url!r})", key="--node"
            )
        self.url = node_url.rstrip("/") + SIGHTINGS_PATH
        self._headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        self._verify = verify
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> NodeClient:
        self._client = httpx.AsyncClient(verify=self._verify, timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def submit(self, batches: Sequence[QueuedBatch]) -> dict[str, object]:
        """Send ``batches``; returns the node's answer once it committed them.

        Raises:
            NodeUnreachable: no answer, TLS failure, timeout, 5xx or 429 (try again later).
            SubmissionRefused: any other 4xx.
        """
        if self._client is None:
            raise DTIMError("NodeClient is not open (use async with)")
        try:
            response = await self._client.post(
                self.url, content=request_body(batches), headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise NodeUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise NodeUnreachable(f"the node answered {response.status_code}")
        if response.status_code >= 400:
            raise SubmissionRefused(response.status_code, _reason(response))
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise NodeUnreachable("the node's answer is not a JSON object")
        return answer


def _reason(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("reason") or body.get("error") or body)[:500]
    return str(body)[:200]
