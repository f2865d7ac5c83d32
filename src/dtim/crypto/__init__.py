"""Security core: node identity, request signatures, TLS material, keyring and audit log.

Modules:

* :mod:`dtim.crypto.identity` — Ed25519 node identity, node id and fingerprint;
* :mod:`dtim.crypto.certs` — node CA and node certificates (issue, rotate);
* :mod:`dtim.crypto.tls` — TLS contexts and runtime mTLS peer trust;
* :mod:`dtim.crypto.keyring` — AES-256-GCM keyring with rotation;
* :mod:`dtim.crypto.auditlog` — encrypted, crash-tolerant daily audit log;
* :mod:`dtim.crypto.evidence` — sealing sighting evidence for the store;
* :mod:`dtim.crypto.signatures` — RFC 9421 HTTP message signatures (Ed25519);
* :mod:`dtim.crypto.bodysig` — the gossip body's ``signature`` field (RFC 8785);
* :mod:`dtim.crypto.rotation` — key rotation and identity rollover statements.
"""
