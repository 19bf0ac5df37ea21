"""Ibis backends (DuckDB, Spark) and the portable-subset helpers."""

from segflow.engine._connect import Engine, EngineName, connect
from segflow.engine._periods import period_start, snapshot_dates

__all__ = ["Engine", "EngineName", "connect", "period_start", "snapshot_dates"]
