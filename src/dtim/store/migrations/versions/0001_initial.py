"""Initial schema: indicators, sightings, peers, state, tail positions, sequence.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the first version of every table."""
    op.create_table(
        "indicators",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("confidence", sa.Integer, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("modified", sa.Float, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("sightings", sa.BigInteger, nullable=False),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
        sa.Column("tlp", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("recipients", sa.Text, nullable=False, server_default="[]"),
        sa.Column("custom_fields", sa.Text, nullable=False, server_default="{}"),
        sa.Column("sources", sa.Text, nullable=False, server_default="[]"),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_indicators_type_value", "indicators", ["type", "value"], unique=True)
    op.create_index("ix_indicators_last_seen", "indicators", ["last_seen"])
    op.create_index("ix_indicators_tlp", "indicators", ["tlp"])
    op.create_index("ix_indicators_seq", "indicators", ["seq"], unique=True)
    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("indicator_id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("observed_at", sa.Float, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("evidence", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_sightings_indicator", "sightings", ["indicator_id"])
    op.create_index("ix_sightings_observed_at", "sightings", ["observed_at"])
    op.create_table(
        "peers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("endpoint", sa.Text, nullable=False, unique=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("groups", sa.Text, nullable=False, server_default="[]"),
        sa.Column("score", sa.Float, nullable=False, server_default="0"),
        sa.Column("last_contact", sa.Float, nullable=True),
        sa.Column("added_at", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("tls_ca", sa.Text, nullable=True),
    )
    op.create_index("ix_peers_status", "peers", ["status"])
    op.create_table(
        "state",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "tail_positions",
        sa.Column("watcher", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("inode", sa.BigInteger, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
    )
    sequence = op.create_table(
        "sequence",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(sequence, [{"name": "changes", "value": 0}])


def downgrade() -> None:
    """Drop everything."""
    for table in ("sequence", "tail_positions", "state", "peers", "sightings", "indicators"):
        op.drop_table(table)
