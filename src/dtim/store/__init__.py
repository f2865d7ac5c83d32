"""Persistence of indicators, sightings, peers and state (SQLAlchemy Core; SQLite or PostgreSQL)."""

from dtim.store.queries import IndicatorQuery, Store, StoreCounts, StoredSighting
from dtim.store.search import (
    HourlyCount,
    IndicatorEvent,
    IndicatorPage,
    IndicatorSearch,
    IndicatorStats,
    IndicatorSummary,
    SortKey,
)
from dtim.store.tables import MAX_SEQUENCE

__all__ = [
    "MAX_SEQUENCE",
    "HourlyCount",
    "IndicatorEvent",
    "IndicatorPage",
    "IndicatorQuery",
    "IndicatorSearch",
    "IndicatorStats",
    "IndicatorSummary",
    "SortKey",
    "Store",
    "StoreCounts",
    "StoredSighting",
]
