"""Persistence of indicators, sightings, peers and state (SQLAlchemy Core; SQLite or PostgreSQL)."""

from dtim.store.queries import IndicatorQuery, Store, StoreCounts, StoredSighting

__all__ = ["IndicatorQuery", "Store", "StoreCounts", "StoredSighting"]
