"""What ``segflow warehouse push`` carries besides new loads: the rows the DuckDB ingest
deleted from loads pushed before, and their load rows it changed.

The DuckDB ingest deletes rows of earlier loads (a late correction deletes the stored rows
of its key; a file delivered again with ``redelivery = "replace"`` deletes what its earlier
loads stored and marks those loads ``replaced``; a quarantined row that passes now loses its
quarantine record). The warehouse never rewrites a pushed partition: a push takes those rows
back through the Spark store's ``retracted`` table (:mod:`segflow.store._spark_layout`), as
the Spark ingest does, in the push's run.

The comparison is of states, not of events: for every load that both the DuckDB store and
the warehouse have, the rows per table on both sides; a load with fewer rows in DuckDB has
its missing rows (by row number: ``source_row``, or ``row_number``) taken back, one with
none all of them; a load row whose ``status`` differs is taken back and written again as
DuckDB has it. So a push also carries what earlier pushes (of a segflow before session 58)
left behind. Rows without a ``load_id`` are not compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from segflow.engine._spark import local_url
from segflow.store._spark_layout import RETRACTABLE

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from segflow.store import Store
    from segflow.store._spark import SparkStore

#: The DuckDB store's loads that the warehouse has (a TEMP table ``_segflow_pushed`` of
#: the warehouse's load ids, filled by :func:`segflow.warehouse._push.push_to_warehouse`).
_BOTH = ("(SELECT DISTINCT load_id FROM loads WHERE load_id IN "
         "(SELECT load_id FROM _segflow_pushed))")


def retract_deleted(store: Store, warehouse: SparkStore, run_id: str, tmp: Path,
                    names: list[str]) -> int:
    """Take back (in run ``run_id`` of ``warehouse``) the rows of tables ``names`` that the
    DuckDB ``store`` deleted from loads both have, and write again the load rows whose
    status changed (see the module notes); returns the rows of ``retracted`` written.
    ``tmp``: a folder Spark's executors read (as the push's)."""
    if "loads" not in names:
        return 0
    written = 0
    for name in names:
        col = RETRACTABLE.get(name, "-")
        if name == "loads" or col == "-":
            continue
        gone = _deleted_rows(store, warehouse, name, col, tmp)
        if gone is not None:
            written += warehouse.write("retracted", gone, run_id)
    return written + _changed_loads(store, warehouse, run_id)


def _deleted_rows(store: Store, warehouse: SparkStore, name: str, col: str | None,
                  tmp: Path) -> DataFrame | None:
    """The ``retracted`` rows (a Spark DataFrame) for the rows of ``name`` in the warehouse
    that the DuckDB store no longer has, None when there are none."""
    from pyspark.sql import functions as F

    duck = dict(store.raw.execute(
        f'SELECT b.load_id, count(t.load_id) FROM {_BOTH} b LEFT JOIN "{name}" t '
        "ON t.load_id = b.load_id GROUP BY b.load_id").fetchall())
    if not duck:
        return None
    wh = warehouse.dataframe(name)
    mine = wh.where(F.col("load_id").isin(list(duck)))
    have = {r.load_id: r["count"] for r in mine.groupBy("load_id").count().collect()}
    short = sorted(load for load, n in have.items() if n > duck[load])
    if not short:
        return None
    whole = [load for load in short if duck[load] == 0 or col is None]
    some = [load for load in short if load not in whole]
    out = mine.where(F.col("load_id").isin(whole)).select(
        F.lit(name).alias("table_name"), F.col("run_id").alias("run_of"), "load_id",
        F.lit(None).cast("long").alias("row_number")).distinct()
    if some:
        path = tmp / f"kept_{name}.parquet"
        store.raw.execute(f'COPY (SELECT DISTINCT load_id AS _l, "{col}" AS _r FROM "{name}" '
                          "WHERE load_id IN (SELECT unnest(?::VARCHAR[]))) TO "
                          f"'{path}' (FORMAT parquet)", [some])
        kept = warehouse.session.read.parquet(local_url(path))
        rows = mine.where(F.col("load_id").isin(some))
        rows = rows.join(kept, (rows["load_id"] == kept["_l"]) & (rows[col] == kept["_r"]),
                         "left_anti")
        out = out.unionByName(rows.select(
            F.lit(name).alias("table_name"), F.col("run_id").alias("run_of"), "load_id",
            F.col(col).cast("long").alias("row_number")).distinct())
    return out


def _changed_loads(store: Store, warehouse: SparkStore, run_id: str) -> int:
    """Load rows of the warehouse whose ``status`` the DuckDB store changed (``replaced``
    by a later delivery): taken back and written again as DuckDB has them; returns the
    ``retracted`` rows written."""
    from segflow._duck import arrow_table

    duck = arrow_table(store.raw.execute(f"SELECT * FROM loads WHERE load_id IN {_BOTH}"))
    status = dict(zip(duck.column("load_id").to_pylist(), duck.column("status").to_pylist(),
                      strict=True))
    rows = warehouse.dataframe("loads").select("load_id", "status", "run_id").collect()
    changed = [r for r in rows if r.load_id in status and r.status != status[r.load_id]]
    if not changed:
        return 0
    n = warehouse.write("retracted", pa.table({
        "table_name": ["loads"] * len(changed), "run_of": [r.run_id for r in changed],
        "load_id": [r.load_id for r in changed],
        "row_number": pa.array([None] * len(changed), pa.int64())}), run_id)
    ids = {r.load_id for r in changed}
    again = duck.filter(pa.array([i in ids for i in duck.column("load_id").to_pylist()]))
    warehouse.write("loads", again, run_id)
    return n

