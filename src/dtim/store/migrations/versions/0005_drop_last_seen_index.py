"""Drop ix_indicators_last_seen: ix_indicators_last_seen_seq starts with the same column.

Every query that ranged over last_seen alone (aging's purge, the dashboard's age
filter) is served by the composite index, and one index fewer makes every
indicator write cheaper.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Drop the redundant single-column index."""
    op.drop_index("ix_indicators_last_seen", table_name="indicators")


def downgrade() -> None:
    """Create it again."""
    op.create_index("ix_indicators_last_seen", "indicators", ["last_seen"])
