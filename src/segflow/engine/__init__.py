"""Ibis backends (DuckDB, Spark) and the portable-subset helpers."""

from segflow.engine._connect import Engine, EngineName, connect, resolve_engine
from segflow.engine._periods import period_start, snapshot_dates
from segflow.engine._spark import (
    ibis_backend,
    session_from_settings,
    spark_session,
    warehouse_url,
)

__all__ = [
    "Engine",
    "EngineName",
    "connect",
    "ibis_backend",
    "period_start",
    "resolve_engine",
    "session_from_settings",
    "snapshot_dates",
    "spark_session",
    "warehouse_url",
]
