"""Alembic environment: always run with a connection handed over by dtim.registry.records."""

from __future__ import annotations

from alembic import context

from dtim.registry.tables import metadata

VERSION_TABLE = "registry_version"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
