"""Gossip: received items and pinned peer CA certificates.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create gossip_items and peer_pins."""
    op.create_table(
        "gossip_items",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.LargeBinary(32), nullable=False),
        sa.Column("stamp", sa.BigInteger, nullable=False),
        sa.Column("indicator_id", sa.String(36), nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
        sa.Column("relay", sa.Boolean, nullable=False),
        sa.Column("received_from", sa.String(64), nullable=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_gossip_items_item_id", "gossip_items", ["item_id"], unique=True)
    op.create_index("ix_gossip_items_expires", "gossip_items", ["expires"])
    op.create_index("ix_gossip_items_indicator", "gossip_items", ["indicator_id"])
    op.create_table(
        "peer_pins",
        sa.Column("peer_id", sa.String(64), primary_key=True),
        sa.Column("ca_pem", sa.Text, nullable=False),
        sa.Column("pinned_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("peer_pins")
    op.drop_table("gossip_items")
