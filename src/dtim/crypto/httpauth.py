"""httpx integration: sign outgoing requests and verify the signed responses.

``SignedRequestAuth`` is an :class:`httpx.Auth`, so it works with both
``httpx.Client`` and ``httpx.AsyncClient``::

    auth = SignedRequestAuth(signer, recipient=peer.id, responder_public_key=peer.public_key)
    async with httpx.AsyncClient(verify=client_ctx, auth=auth, timeout=10) as client:
        response = await client.post(url, content=body)   # SignatureError if the answer is forged

It depends only on the public API of :mod:`dtim.crypto.signatures`.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from dtim.crypto.signatures import MessageSigner, verify_response
from dtim.model.clock import Clock, SystemClock


class SignedRequestAuth(httpx.Auth):
    """Adds DTIM's RFC 9421 request signature; checks the response signature when asked.

    Args:
        signer: signs with our identity.
        recipient: the node id of the peer (or registry) the request is for.
        responder_public_key: base64 raw public key the response must be signed with;
            None to skip response verification (e.g. a public endpoint).
        clock: time source for the response's freshness check.

    A response with status >= 400 that carries no signature is passed through
    unverified, so the caller sees the peer's refusal (e.g. 401 with its reason)
    rather than a signature error; any 2xx/3xx answer must verify.
    """

    requires_request_body = True
    requires_response_body = True

    def __init__(
        self,
        signer: MessageSigner,
        *,
        recipient: str,
        responder_public_key: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._signer = signer
        self._recipient = recipient
        self._responder_key = responder_public_key
        self._clock = clock or SystemClock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign ``request``; after the response arrives, verify it."""
        raw_path, has_query, query = request.url.raw_path.decode("ascii").partition("?")
        signed = self._signer.sign_request(
            method=request.method,
            path=raw_path,
            query=query if has_query else None,
            body=request.content,
            recipient=self._recipient,
        )
        for name, value in signed.headers:
            request.headers[name] = value
        response = yield request
        if self._responder_key is None:
            return
        if response.status_code >= 400 and "signature" not in response.headers:
            return
        verify_response(
            status=response.status_code,
            headers=[
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers.raw
            ],
            body=response.content,
            responder_public_key=self._responder_key,
            our_node_id=signed.key_id or self._signer.key_id,
            request_signature=signed.signature,
            now=self._clock.now(),
        )
