"""RFC 9421 request signatures for the blocking ``requests`` client that schemathesis uses.

:class:`dtim.crypto.httpauth.SignedRequestAuth` is the httpx flavour; this one
signs the prepared request exactly as it goes on the wire (method, raw path,
raw query, body) and, when given the responder's key, checks that every answer
under 400 comes back signed for us (``SignatureError`` otherwise), except on the
public paths the server does not sign.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import requests

from dtim.crypto.signatures import MessageSigner, verify_response
from dtim.model.clock import SystemClock


class SignedRequests(requests.auth.AuthBase):
    """Sign each request for ``recipient``; verify signed answers from ``responder_public_key``."""

    def __init__(
        self,
        signer: MessageSigner,
        *,
        recipient: str,
        responder_public_key: str | None = None,
        unsigned_paths: Collection[str] = (),
    ) -> None:
        self._signer = signer
        self._recipient = recipient
        self._responder_key = responder_public_key
        self._unsigned = frozenset(unsigned_paths)
        self._clock = SystemClock()
        self.verified = 0
        """Signed answers checked so far."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the signature headers; hook the response check."""
        raw = request.body or b""
        body = raw.encode("utf-8") if isinstance(raw, str) else raw
        if not isinstance(body, bytes):
            raise TypeError("streamed request bodies cannot be signed")
        raw_path, has_query, query = (request.path_url or "/").partition("?")
        signed = self._signer.sign_request(
            method=request.method or "GET",
            path=raw_path,
            query=query if has_query else None,
            body=body,
            recipient=self._recipient,
        )
        for name, value in signed.headers:
            request.headers[name] = value
        if self._responder_key is not None and raw_path not in self._unsigned:
            request.register_hook("response", self._checker(signed.signature))
        return request

    def _checker(self, request_signature: bytes) -> Any:
        def check(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
            if response.status_code >= 400 and "signature" not in response.headers:
                return  # a refusal before the signature was checked is sent unsigned
            verify_response(
                status=response.status_code,
                headers=[(k.lower(), v) for k, v in response.headers.items()],
                body=response.content,
                responder_public_key=str(self._responder_key),
                our_node_id=self._signer.key_id,
                request_signature=request_signature,
                now=self._clock.now(),
            )
            self.verified += 1

        return check
