"""The DuckDB store: canonical tables, schema versions, run log, atomic writes."""

from segflow.store._schema import CANONICAL_TABLES, LINEAGE_COLUMNS, SCHEMA_VERSION
from segflow.store._store import (
    STORE_FILENAME,
    Store,
    StoreNeedsUpgrade,
    interruptible,
    open_reading,
)

__all__ = ["CANONICAL_TABLES", "LINEAGE_COLUMNS", "SCHEMA_VERSION", "STORE_FILENAME", "Store",
           "StoreNeedsUpgrade", "interruptible", "open_reading"]
