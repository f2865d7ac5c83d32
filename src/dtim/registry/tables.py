"""The registry's own database schema (SQLAlchemy Core), separate from a node's store.

``registry_entries`` holds the newest signed statement per node (an entry or a
withdrawal tombstone). ``seq`` is a registry-wide change number: every write
takes the next one, so "entries changed since N", pagination included, is one
range scan of the ``(kind, seq)`` or ``seq`` index.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text

metadata = MetaData()

entries = Table(
    "registry_entries",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("endpoint", String(255), nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("signature", String(128), nullable=False),
    Column("document", Text, nullable=False),
    Column("origin", String(255), nullable=False, server_default=""),
    Column("received_at", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_registry_entries_seq", "seq", unique=True),
    Index("ix_registry_entries_kind_seq", "kind", "seq"),
    Index("ix_registry_entries_endpoint_kind", "endpoint", "kind"),
    Index("ix_registry_entries_expires_at", "expires_at"),
)

sequence = Table(
    "registry_sequence",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

meta = Table(
    "registry_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

cursors = Table(
    "registry_cursors",
    metadata,
    Column("url", String(255), primary_key=True),
    Column("instance", String(64), nullable=False),
    Column("since", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
