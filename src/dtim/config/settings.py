"""Every DTIM setting, declared once: name, type, default and help.

The dataclasses below are the single declaration. The TOML template written by
``dtim init``, environment overrides (``DTIM__SECTION__KEY``), ``--set`` on the
command line, ``dtim config show`` and docs/configuration.md all derive from
them. A field's ``metadata`` carries its help text and flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

SECRET = "secret"  # noqa: S105  # nosec B105  # the name of a metadata key, not a password
# Peer API and registry serve other hosts (mutual TLS, HTTPS), so they listen on every interface.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104  # nosec B104  # see above
SCAN_DIR_EXAMPLE = "/var/tmp/scan"  # noqa: S108  # nosec B108  # an example for the docs, not a default
HELP = "help"
EXAMPLE = "example"


def setting(default: Any, help: str, *, secret: bool = False, example: str | None = None) -> Any:
    """Declare one setting with its default and help text."""
    metadata = {HELP: help, SECRET: secret, EXAMPLE: example}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    if isinstance(default, dict):
        return field(default_factory=lambda: MappingProxyType(dict(default)), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class SecuritySettings:
    """``[security]``: keys, certificates and request signatures."""

    key_rotation_days: int = setting(
        7,
        "Rotate identity, TLS and log keys every N days (seed default 7). "
        "0 disables automatic rotation.",
    )
    tls_cert_path: str = setting(
        "certs/node.crt", "Certificate served on the peer port, relative to the node home."
    )
    tls_key_path: str = setting("certs/node.key", "Private key of that certificate (mode 0600).")
    tls_ca_path: str = setting(
        "certs/ca.crt", "The node CA that issued the certificate; peers pin it on approval."
    )
    signature_window_seconds: int = setting(
        300, "Accepted clock difference for signed requests, and the replay window."
    )


@dataclass(frozen=True)
class StorageSettings:
    """``[storage]``: where indicators and the audit log live."""

    encrypted_logs_path: str = setting(
        "data/logs", "Directory of the AES-256-GCM encrypted audit log (one file per UTC day)."
    )
    database_url: str = setting(
        "sqlite:///data/dtim.db",
        "SQLAlchemy URL: sqlite:///relative/or/absolute.db or postgresql://user@host/db.",
    )


@dataclass(frozen=True)
class NetworkSettings:
    """``[network]``: the peer port, gossip and the registry."""

    gossip_interval_seconds: float = setting(
        60, "Seconds between gossip rounds (jittered), seed default 60."
    )
    peers_per_round: int = setting(3, "Approved peers contacted per round, seed default 3.")
    default_peers: tuple[Any, ...] = setting(
        [],
        "Peers to know at start: a bare URL becomes a pending peer; "
        "{endpoint = URL, public_key = BASE64} is approved.",
        example='["https://peer1.example.com:3030", '
        '{ endpoint = "https://peer2.example.com:3030", public_key = "BASE64" }]',
    )
    registry_url: str = setting(
        "",
        "Peer registry to read (and, with registry_opt_in, to register at). Empty: none.",
        example="https://registry.dtim.example.com",
    )
    registry_opt_in: bool = setting(
        False, "Publish this node's endpoint and key at the registry. Off by default."
    )
    listen_address: str = setting(
        ALL_INTERFACES, "Address of the peer API (HTTPS, mutual TLS for peers)."
    )
    listen_port: int = setting(3030, "Port of the peer API.")
    public_endpoint: str = setting(
        "", "URL peers use to reach this node; defaults to https://<host>:<listen_port>."
    )
    max_new_reports_per_peer: int = setting(
        1000, "New reports accepted from one peer per round; the rest wait for later rounds."
    )
    max_verdicts_per_unapproved_issuer: int = setting(
        100,
        "Verdict tombstones (false-positive, revoked) from one issuer this node has not "
        "approved that it applies per day; more are stored and relayed but not applied. "
        "0 follows approved peers' verdicts only.",
    )
    request_timeout_seconds: float = setting(10, "Timeout of every call to a peer or the registry.")
    max_body_bytes: int = setting(
        1_048_576, "Largest request body the peer API accepts (413 beyond)."
    )


@dataclass(frozen=True)
class AdminSettings:
    """``[admin]``: the local admin API and dashboard."""

    listen_address: str = setting(
        "127.0.0.1",
        "Address of the admin API and dashboard; keep it on loopback unless behind a proxy.",
    )
    listen_port: int = setting(3031, "Port of the admin API and dashboard.")
    tls: bool = setting(
        False,
        "Serve the admin API and dashboard over HTTPS with the node certificate "
        "(security.tls_cert_path); remote sensors (dtim sensor run) need it.",
    )


@dataclass(frozen=True)
class PrivacySettings:
    """``[privacy]``: what may leave the node."""

    level: str = setting(
        "moderate",
        'What leaves: "strict" (type + value), "moderate" (+ confidence, timestamps), '
        '"open" (+ tags, context).',
    )
    allow_custom_fields: bool = setting(
        True, "Let custom fields named in allowed_custom_fields leave at the open level."
    )
    allowed_custom_fields: tuple[str, ...] = setting(
        [], "Custom field names that may leave at the open level."
    )
    own_networks: tuple[str, ...] = setting(
        [],
        "Your own address ranges (CIDR): never shared, never accepted.",
        example='["203.0.113.0/24"]',
    )
    own_domains: tuple[str, ...] = setting(
        [], "Your own domains: never shared, never accepted.", example='["example.org"]'
    )
    org_names: tuple[str, ...] = setting(
        [], "Names of your organisation; any field containing one is stripped."
    )
    warninglists: tuple[str, ...] = setting(
        [], "Extra warninglist files (one value or CIDR per line), relative to the home."
    )
    timestamp_precision: str = setting(
        "hour", 'Timestamps leave coarsened to "second", "minute", "hour" or "day".'
    )
    dp_epsilon: float = setting(
        0.0, "Laplace noise on shared counts with this epsilon; 0 turns it off."
    )


@dataclass(frozen=True)
class WatcherSettings:
    """``[watchers]``: log sources. A watcher whose path is empty is off."""

    ufw_log_path: str = setting("", "ufw kernel log.", example="/var/log/ufw.log")
    fail2ban_log_path: str = setting("", "fail2ban log.", example="/var/log/fail2ban.log")
    suricata_log_path: str = setting("", "Suricata eve.json.", example="/var/log/suricata/eve.json")
    zeek_log_dir: str = setting(
        "", "Zeek log directory (TSV or JSON).", example="/opt/zeek/logs/current"
    )
    clamav_scan_dir: str = setting(
        "",
        "Directory whose new files are hashed and scanned with ClamAV: clamd, else clamscan. "
        "[watchers.clamav] sets clamd_socket, clamscan and database (signatures for clamscan -d).",
        example=SCAN_DIR_EXAMPLE,
    )
    virustotal_api_key: str = setting(
        "",
        "VirusTotal API key: from the environment only (DTIM__WATCHERS__VIRUSTOTAL_API_KEY).",
        secret=True,
    )
    nginx_access_log: str = setting("", "nginx access log.", example="/var/log/nginx/access.log")
    nginx_error_log: str = setting("", "nginx error log.", example="/var/log/nginx/error.log")
    apache_access_log: str = setting(
        "", "Apache access log.", example="/var/log/apache2/access.log"
    )
    apache_error_log: str = setting("", "Apache error log.", example="/var/log/apache2/error.log")
    start_at: str = setting(
        "end", 'Where to start in a file seen for the first time: "end" or "beginning".'
    )
    rules: Mapping[str, Mapping[str, Any]] = setting(
        {}, "Per-watcher threshold overrides: one [watchers.<name>] table each."
    )


@dataclass(frozen=True)
class AgingSettings:
    """``[aging]``: lifetime in days per indicator type; confidence decays to zero over it."""

    ipv4: float = setting(30, "Lifetime of IPv4 indicators, days.")
    ipv6: float = setting(30, "Lifetime of IPv6 indicators, days.")
    cidr: float = setting(30, "Lifetime of CIDR indicators, days.")
    url: float = setting(60, "Lifetime of URL indicators, days.")
    domain: float = setting(180, "Lifetime of domain indicators, days.")
    email: float = setting(90, "Lifetime of e-mail indicators, days.")
    md5: float = setting(365, "Lifetime of MD5 indicators, days.")
    sha1: float = setting(365, "Lifetime of SHA-1 indicators, days.")
    sha256: float = setting(365, "Lifetime of SHA-256 indicators, days.")
    sha512: float = setting(365, "Lifetime of SHA-512 indicators, days.")
    decay_speed: float = setting(
        2.0, "delta in score = base * (1 - (t/L)^(1/delta)); higher keeps scores up longer."
    )


@dataclass(frozen=True)
class RegistrySettings:
    """``[registry]``: used by ``dtim registry run``."""

    listen_address: str = setting(ALL_INTERFACES, "Address of the registry API (HTTPS).")
    listen_port: int = setting(3040, "Port of the registry API.")
    heartbeat_seconds: float = setting(
        300, "Nodes refresh their entry this often; entries expire after 3 missed refreshes."
    )
    federate_with: tuple[str, ...] = setting(
        [], "Other registries to exchange signed entries with."
    )


@dataclass(frozen=True)
class IntegrationsSettings:
    """``[integrations]``: where else indicators go (through the privacy filter)."""

    webhooks: tuple[Any, ...] = setting(
        [],
        "Webhook receivers: tables with url, secret_env (environment variable holding the HMAC "
        "secret), min_confidence, types, level.",
        example='[{ url = "https://siem.example.org/dtim", secret_env = "DTIM_WEBHOOK_SECRET", '
        "min_confidence = 70 }]",
    )
    syslog_cef_address: str = setting(
        "",
        "host:port of a syslog collector receiving CEF over UDP; empty turns it off.",
        example="127.0.0.1:514",
    )
    syslog_cef_transport: str = setting(
        "udp", 'How CEF lines travel: "udp" (one datagram each) or "tcp" (RFC 6587 octet counting).'
    )
    syslog_min_confidence: int = setting(
        70, "Only indicators at or above this confidence are sent as CEF."
    )
    syslog_types: tuple[str, ...] = setting(
        [],
        "Indicator types sent as CEF (empty: every type).",
        example='["ipv4", "ipv6", "domain", "url"]',
    )


@dataclass(frozen=True)
class LoggingSettings:
    """``[logging]``: what the node and registry write to standard error (not the audit log)."""

    format: str = setting(
        "text",
        'Standard error lines: "text" for people, "json" for log shippers (one object per line).',
    )
    level: str = setting(
        "info", 'Least severe level written: "debug", "info", "warning" or "error".'
    )


@dataclass(frozen=True)
class Settings:
    """The whole configuration of a node (or registry), resolved and validated."""

    security: SecuritySettings = field(default_factory=SecuritySettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    watchers: WatcherSettings = field(default_factory=WatcherSettings)
    aging: AgingSettings = field(default_factory=AgingSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    integrations: IntegrationsSettings = field(default_factory=IntegrationsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    def __repr__(self) -> str:
        # Secrets never reach logs through repr().
        return f"Settings({', '.join(f'{name}={section!r}' for name, section in sections(self))})"


def sections(settings: Settings) -> list[tuple[str, Any]]:
    """The (name, section object) pairs of a Settings, in declaration order."""
    return [(f.name, getattr(settings, f.name)) for f in fields(settings)]


def section_types() -> dict[str, type[Any]]:
    """Section name to its dataclass."""
    return {f.name: f.default_factory for f in fields(Settings)}  # type: ignore[misc]  # every section has a factory


def _masked_repr(self: Any) -> str:
    parts = []
    for f in fields(self):
        value = getattr(self, f.name)
        shown = "'***'" if f.metadata.get(SECRET) and value else repr(value)
        parts.append(f"{f.name}={shown}")
    return f"{type(self).__name__}({', '.join(parts)})"


for _section in (
    SecuritySettings,
    StorageSettings,
    NetworkSettings,
    AdminSettings,
    PrivacySettings,
    WatcherSettings,
    AgingSettings,
    RegistrySettings,
    IntegrationsSettings,
    LoggingSettings,
):
    _section.__repr__ = _masked_repr  # type: ignore[method-assign]  # one masking repr for every section
