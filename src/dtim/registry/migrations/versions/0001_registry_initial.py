"""Initial registry schema: entries, sequence, meta, federation cursors.

Revision ID: r0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the registry tables and its instance id."""
    op.create_table(
        "registry_entries",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("origin", sa.String(255), nullable=False, server_default=""),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_registry_entries_seq", "registry_entries", ["seq"], unique=True)
    op.create_index("ix_registry_entries_kind_seq", "registry_entries", ["kind", "seq"])
    # endpoint first: the "who holds this endpoint" check must not scan by kind.
    op.create_index("ix_registry_entries_endpoint_kind", "registry_entries", ["endpoint", "kind"])
    op.create_index("ix_registry_entries_expires_at", "registry_entries", ["expires_at"])
    sequence = op.create_table(
        "registry_sequence",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    meta = op.create_table(
        "registry_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_cursors",
        sa.Column("url", sa.String(255), primary_key=True),
        sa.Column("instance", sa.String(64), nullable=False),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(sequence, [{"name": "entries", "value": 0}])
    # Federation peers reset their cursor when this id changes (a new, empty database).
    op.bulk_insert(meta, [{"key": "instance", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    """Drop every registry table."""
    for table in ("registry_cursors", "registry_meta", "registry_sequence", "registry_entries"):
        op.drop_table(table)
