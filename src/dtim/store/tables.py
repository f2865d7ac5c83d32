"""The database schema (SQLAlchemy Core). Migrations in ``migrations/`` create it.

Times are stored as float seconds since the epoch (UTC): compact, fast to
compare and identical on SQLite and PostgreSQL. JSON columns hold text.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

MAX_SEQUENCE = 2**63 - 1
"""The largest change number (``seq``, a cursor) a BigInteger column holds.

APIs refuse larger cursors as bad input instead of handing them to the database."""

indicators = Table(
    "indicators",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("value", Text, nullable=False),
    Column("confidence", Integer, nullable=False),
    Column("created", Float, nullable=False),
    Column("modified", Float, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("sightings", BigInteger, nullable=False),
    Column("tags", Text, nullable=False, server_default="[]"),
    Column("tlp", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("recipients", Text, nullable=False, server_default="[]"),
    Column("custom_fields", Text, nullable=False, server_default="{}"),
    Column("sources", Text, nullable=False, server_default="[]"),
    Column("seq", BigInteger, nullable=False),
    # Network indicators' first and last address as sortable text (netkeys.py), for
    # CIDR containment searches; NULL for other types. Added by migration 0002.
    Column("net_lo", String(33), nullable=True),
    Column("net_hi", String(33), nullable=True),
    Index("ix_indicators_type_value", "type", "value", unique=True),
    Index("ix_indicators_tlp", "tlp"),
    Index("ix_indicators_seq", "seq", unique=True),
    # Keyset pagination of the dashboard: one (sort column, seq) index per sort order.
    # The value index is on ``value COLLATE "C"`` on PostgreSQL (byte order, like SQLite).
    Index("ix_indicators_type_seq", "type", "seq"),
    Index("ix_indicators_confidence_seq", "confidence", "seq"),
    Index("ix_indicators_first_seen_seq", "first_seen", "seq"),
    Index("ix_indicators_last_seen_seq", "last_seen", "seq"),
    Index("ix_indicators_created", "created"),
    Index("ix_indicators_type_net_lo", "type", "net_lo"),
)

indicator_events = Table(
    "indicator_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("indicator_id", String(36), nullable=False),
    Column("at", Float, nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),
    Index("ix_indicator_events_indicator", "indicator_id", "at"),
)

sightings = Table(
    "sightings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("indicator_id", String(36), nullable=False),
    Column("source", String(64), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("observed_at", Float, nullable=False),
    Column("count", Integer, nullable=False),
    Column("evidence", LargeBinary, nullable=True),
    Index("ix_sightings_indicator", "indicator_id"),
    Index("ix_sightings_observed_at", "observed_at"),
)

peers = Table(
    "peers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("endpoint", Text, nullable=False, unique=True),
    Column("public_key", Text, nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("groups", Text, nullable=False, server_default="[]"),
    Column("score", Float, nullable=False, server_default="0"),
    Column("last_contact", Float, nullable=True),
    Column("added_at", Float, nullable=False),
    Column("source", String(16), nullable=False),
    Column("tls_ca", Text, nullable=True),
    Index("ix_peers_status", "status"),
)

state = Table(
    "state",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

tail_positions = Table(
    "tail_positions",
    metadata,
    Column("watcher", String(64), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("inode", BigInteger, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("fingerprint", String(64), nullable=False),
)

sequence = Table(
    "sequence",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
