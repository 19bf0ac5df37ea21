"""DuckDB results as Arrow, through the API each DuckDB release names.

DuckDB 1.4 added ``to_arrow_table`` and ``to_arrow_reader``; 1.5 deprecates the older
``fetch_arrow_table`` and ``fetch_record_batch`` (2.0 removes them from ``execute`` results).
segflow requires ``duckdb>=1.4`` (pyproject.toml says why), where the new names exist; these
helpers are the one place that names them, and still fall back to the old ones (a result
object without the new name), without a deprecation warning on current releases. Call them
rather than the methods (every DuckDB result of segflow goes through them).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def arrow_table(result: Any) -> pa.Table:
    """The whole of a DuckDB result (connection with a pending result, or relation) as a table."""
    method = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    return method()


def arrow_reader(result: Any, batch_size: int) -> pa.RecordBatchReader:
    """A DuckDB result read as a stream of record batches of at most ``batch_size`` rows."""
    method = getattr(result, "to_arrow_reader", None) or result.fetch_record_batch
    return method(batch_size)
