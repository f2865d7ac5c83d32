"""Dashboard search: network range keys, keyset-pagination indexes, indicator history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dtim.store.netkeys import NETWORK_TYPES, indicator_range

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 2000
_SORT_INDEXES = {
    "ix_indicators_type_seq": ["type", "seq"],
    "ix_indicators_confidence_seq": ["confidence", "seq"],
    "ix_indicators_first_seen_seq": ["first_seen", "seq"],
    "ix_indicators_last_seen_seq": ["last_seen", "seq"],
    "ix_indicators_created": ["created"],
    "ix_indicators_type_net_lo": ["type", "net_lo"],
}


def upgrade() -> None:
    """Add net_lo/net_hi (filled for existing rows), sort indexes and indicator_events."""
    op.add_column("indicators", sa.Column("net_lo", sa.String(33), nullable=True))
    op.add_column("indicators", sa.Column("net_hi", sa.String(33), nullable=True))
    _backfill()
    for name, columns in _SORT_INDEXES.items():
        op.create_index(name, "indicators", columns)
    if op.get_bind().dialect.name == "postgresql":
        # Byte order, so a prefix is one index range whatever the database's locale.
        op.execute('CREATE INDEX ix_indicators_value ON indicators (value COLLATE "C")')
    else:
        op.create_index("ix_indicators_value", "indicators", ["value"])
    op.create_table(
        "indicator_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("indicator_id", sa.String(36), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_indicator_events_indicator", "indicator_events", ["indicator_id", "at"])


def _backfill() -> None:
    bind = op.get_bind()
    table = sa.table(
        "indicators",
        sa.column("id", sa.String),
        sa.column("type", sa.String),
        sa.column("value", sa.Text),
        sa.column("net_lo", sa.String),
        sa.column("net_hi", sa.String),
    )
    rows = bind.execute(
        sa.select(table.c.id, table.c.type, table.c.value).where(
            table.c.type.in_(sorted(NETWORK_TYPES))
        )
    ).all()
    update = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row_id"))
        .values(net_lo=sa.bindparam("lo"), net_hi=sa.bindparam("hi"))
    )
    for start in range(0, len(rows), _BATCH):
        params = []
        for row_id, type_, value in rows[start : start + _BATCH]:
            lo, hi = indicator_range(type_, value)
            params.append({"row_id": row_id, "lo": lo, "hi": hi})
        bind.execute(update, params)


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_index("ix_indicator_events_indicator", table_name="indicator_events")
    op.drop_table("indicator_events")
    op.drop_index("ix_indicators_value", table_name="indicators")
    for name in _SORT_INDEXES:
        op.drop_index(name, table_name="indicators")
    with op.batch_alter_table("indicators") as batch:
        batch.drop_column("net_hi")
        batch.drop_column("net_lo")
