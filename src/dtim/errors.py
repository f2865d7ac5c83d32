"""The DTIM exception tree.

Every error DTIM raises on purpose derives from :class:`DTIMError`; each
concern has one base class, and messages are written for the operator::

    DTIMError
    ├── ConfigError            a setting, config file or home directory is wrong
    ├── ValidationError        a value (indicator, field, request) is not acceptable
    ├── StoreError             the database refused or failed
    ├── CryptoError            keys, signatures, certificates, encrypted files
    │   └── SignatureError     a signature is missing, malformed, stale or wrong
    ├── PrivacyError           something may not leave the node
    ├── GossipError
    │   ├── PeerUnreachable    network failure or timeout talking to a peer
    │   ├── PeerRejected       the peer (or we) refused the exchange
    │   └── ProtocolError      a peer sent something that breaks the protocol
    ├── WatcherError
    │   └── ParseError         one log line could not be understood
    ├── StixError              STIX content could not be mapped
    ├── TaxiiError             TAXII request could not be served
    └── RegistryError          the peer registry refused or failed
"""

from __future__ import annotations


class DTIMError(Exception):
    """Root of every error DTIM raises on purpose."""


class ConfigError(DTIMError):
    """A setting, the config file or the node home is wrong.

    Attributes:
        path: the file the problem is in, if any.
        key: the dotted setting name (``network.listen_port``), if any.
        line: the 1-based line in ``path``, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = path
        self.key = key
        self.line = line
        where = ""
        if path is not None:
            where = path if line is None else f"{path}:{line}"
        if key is not None:
            where = f"{where}: {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)


class ValidationError(DTIMError):
    """A value is not acceptable; ``field`` names which one."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}")


class StoreError(DTIMError):
    """The database refused or failed an operation."""


class CryptoError(DTIMError):
    """Keys, certificates, signatures or encrypted files are unusable."""


class SignatureError(CryptoError):
    """A signed request or statement does not verify; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PrivacyError(DTIMError):
    """Something may not leave the node."""


class GossipError(DTIMError):
    """An exchange with a peer failed."""


class PeerUnreachable(GossipError):
    """The peer could not be reached in time."""


class PeerRejected(GossipError):
    """The peer refused us, or we refused the peer (TLS, signature, approval)."""


class ProtocolError(GossipError):
    """A peer sent something that breaks the gossip protocol."""


class WatcherError(DTIMError):
    """A watcher cannot run (missing path, unreadable file, bad settings)."""


class ParseError(WatcherError):
    """One log line could not be understood.

    Attributes:
        source: the watcher name.
        line_number: 1-based line number in the file, when known.
    """

    def __init__(self, source: str, message: str, line_number: int | None = None) -> None:
        self.source = source
        self.line_number = line_number
        where = source if line_number is None else f"{source} line {line_number}"
        super().__init__(f"{where}: {message}")


class StixError(DTIMError):
    """STIX content could not be mapped to or from indicators."""


class TaxiiError(DTIMError):
    """A TAXII request could not be served."""


class RegistryError(DTIMError):
    """The peer registry refused or failed."""
