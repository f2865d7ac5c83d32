"""Security core: node identity, request signatures, TLS material, keyring and audit log.

Modules:

* :mod:`dtim.crypto.identity` — Ed25519 node identity, node id and fingerprint;
* :mod:`dtim.crypto.certs` — node CA and node certificates (issue, rotate);
* :mod:`dtim.crypto.tls` — TLS contexts and runtime mTLS peer trust;
* :mod:`dtim.crypto.keyfiles` — 0600/0700 atomic secret files and permission checks;
* :mod:`dtim.crypto.keyring` — AES-256-GCM keyring with rotation;
* :mod:`dtim.crypto.auditlog` — encrypted, crash-tolerant daily audit log;
* :mod:`dtim.crypto.evidence` — sealing sighting evidence for the store;
* :mod:`dtim.crypto.structured` — RFC 8941 structured field values (parse/serialise);
* :mod:`dtim.crypto.httpsig` — RFC 9421 signature bases and RFC 9530 content digests;
* :mod:`dtim.crypto.signatures` — DTIM's signed requests/responses (Ed25519) and verifier;
* :mod:`dtim.crypto.peerkeys` — peer signing keys and the ``PeerKeys`` lookup protocol;
* :mod:`dtim.crypto.nonces` — replay cache (``NonceCache`` protocol, in-memory implementation);
* :mod:`dtim.crypto.httpauth` — ``SignedRequestAuth`` for httpx clients;
* :mod:`dtim.crypto.bodysig` — the gossip body's ``signature`` field (RFC 8785);
* :mod:`dtim.crypto.rotation` — key rotation and identity rollover statements.
"""
