"""Parquet files with nanosecond timestamps on the Spark ingest: pandas and pyarrow write a
``datetime64[ns]`` column as INT64 ``TIMESTAMP(NANOS)``, which DuckDB reads and Spark refuses
("Illegal Parquet type"); Spark reads such a column as its integer while
:data:`NANOS_AS_LONG` is set, and :func:`micros` makes it the timestamp DuckDB's ingest
stages (docs/scale.md, "Ingest on Spark")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The Spark setting that reads a Parquet column of nanosecond timestamps as its 64-bit
#: integer (without it Spark refuses the file: "Illegal Parquet type: INT64
#: (TIMESTAMP(NANOS,false))"); set only while such a file is loaded.
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"


def nanosecond_columns(path: Path) -> dict[str, bool]:
    """The top-level columns of the Parquet file ``path`` holding nanosecond timestamps
    (INT64 ``TIMESTAMP(NANOS)``, as pandas and pyarrow write ``datetime64[ns]``), each with
    whether it is adjusted to UTC; from the file's footer. DuckDB reads them, Spark only as
    integers (:data:`NANOS_AS_LONG`)."""
    import json

    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path)
    top = set(meta.schema_arrow.names)
    out = {}
    for i in range(meta.metadata.num_columns):
        col = meta.schema.column(i)
        kind = json.loads(col.logical_type.to_json()) if col.logical_type else {}
        if col.path in top and col.physical_type == "INT64" and kind.get("Type") == "Timestamp" \
                and kind.get("timeUnit") == "nanoseconds":
            out[col.path] = bool(kind.get("isAdjustedToUTC"))
    return out


def micros(name: str, utc: bool) -> Any:
    """The Spark column of nanoseconds ``name`` as a timestamp of microseconds, truncated
    toward zero (as DuckDB's cast of ``TIMESTAMP_NS``: -100 ns is 1970-01-01 00:00:00)."""
    from pyspark.sql import functions as F

    quoted = "`" + name.replace("`", "``") + "`"
    whole = f"{quoted} div 1000"
    ts = f"timestamp_micros({whole})" if utc else \
        f"timestampadd(MICROSECOND, {whole}, TIMESTAMP_NTZ '1970-01-01 00:00:00')"
    return F.expr(ts).alias(name)
