"""Remote sensors: their tokens (hashed) and the batch ids already committed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create sensor_tokens and sensor_batches."""
    op.create_table(
        "sensor_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("last_used", sa.Float, nullable=True),
    )
    op.create_table(
        "sensor_batches",
        sa.Column("sensor_id", sa.String(32), primary_key=True),
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("sightings", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("sensor_batches")
    op.drop_table("sensor_tokens")
