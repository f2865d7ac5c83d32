"""Index sensor_batches.received_at: the leader forgets batch ids older than 30 days.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the index the forgetting deletes by."""
    op.create_index("ix_sensor_batches_received_at", "sensor_batches", ["received_at"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_sensor_batches_received_at", table_name="sensor_batches")
