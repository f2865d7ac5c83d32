"""Alembic migrations of the registry database (version table ``registry_version``)."""
