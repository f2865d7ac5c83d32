"""Alembic environment: always run with a connection handed over by dtim.store.engine."""

from __future__ import annotations

from alembic import context

from dtim.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
