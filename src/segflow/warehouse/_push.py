"""``segflow warehouse push``: the canonical tables of the DuckDB store copied into the Spark
warehouse, an interim step until ingest runs on Spark itself (issue 16, item 3).

Only rows of loads the warehouse does not have yet are copied (by ``load_id``), so pushing
after every ``segflow ingest`` adds the new loads and nothing twice. Rows the DuckDB ingest
deleted from loads pushed before (late corrections, files delivered again, released
quarantine records) are taken back in the warehouse by rows of its ``retracted`` table, and
load rows it marked ``replaced`` are written again (:mod:`segflow.warehouse._push_deleted`).
The push is one run of the Spark store: all its tables appear at once or not at all.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from segflow.engine._spark import local_url
from segflow.store import CANONICAL_TABLES, Store
from segflow.store._spark import SparkStore
from segflow.warehouse._push_deleted import retract_deleted

#: Tables a push copies: the canonical ones and the ingest's own records (the audit reads
#: ``ingest_flags``: without it a pushed warehouse's audit lacked the flagged rows).
PUSHED = (*CANONICAL_TABLES, "quarantine", "ingest_duplicates", "ingest_flags", "loads")


def push_to_warehouse(store: Store, warehouse: SparkStore) -> dict[str, int]:
    """Copy the rows of ``store``'s loads that ``warehouse`` lacks, and take back those
    DuckDB deleted from loads it has (``retracted``: the rows taken back, when any: see
    :mod:`segflow.warehouse._push_deleted`); returns rows per table.

    The rows go through Parquet files in a temporary folder of this machine, read by Spark:
    the warehouse may be remote, the executors of the session must see this machine's
    temporary folder (true for ``local[*]`` and a cluster on this machine).

    When the warehouse already holds every load of ``store`` (no row of a pushed table has a
    ``load_id`` it lacks) nothing is written, no run is logged, and the result is ``{}``.
    """
    pushed = set()
    if "loads" in warehouse.tables():
        pushed = {r.load_id for r in warehouse.dataframe("loads").select("load_id").collect()}
    first = not warehouse.tables()
    present = set(store.tables())  # a store from before ingest_flags lacks it
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="segflow-push-") as tmp:
        store.raw.execute("CREATE OR REPLACE TEMP TABLE _segflow_pushed (load_id VARCHAR)")
        try:
            if pushed:
                store.raw.executemany("INSERT INTO _segflow_pushed VALUES (?)",
                                      [[p] for p in pushed])
            if not first and not _new_rows(store, [n for n in PUSHED if n in present]):
                return {}  # nothing new: no empty run in the warehouse's log
            with warehouse.run("push", {"from": str(store.path)}) as run_id:
                if not first:  # before the new rows: what DuckDB deleted from pushed loads
                    names = [n for n in PUSHED if n in present]
                    gone = retract_deleted(store, warehouse, run_id, Path(tmp), names)
                    if gone:
                        counts["retracted"] = gone
                for name in (n for n in PUSHED if n in present):
                    where = ("WHERE load_id NOT IN (SELECT load_id FROM _segflow_pushed)"
                             if not first else "")
                    if not first:
                        where += " AND load_id IS NOT NULL"
                    path = Path(tmp) / f"{name}.parquet"
                    store.raw.execute(f"COPY (SELECT * FROM \"{name}\" {where}) TO '{path}' "
                                      "(FORMAT parquet)")
                    df = warehouse.session.read.parquet(local_url(path))
                    counts[name] = warehouse.write(name, df, run_id)
        finally:
            store.raw.execute("DROP TABLE IF EXISTS _segflow_pushed")
    return counts


def _new_rows(store: Store, names: list[str]) -> int:
    """Rows of tables ``names`` of ``store`` whose ``load_id`` is not in the temporary table
    ``_segflow_pushed`` (the loads the warehouse has): what a push would copy. One query."""
    counts = " UNION ALL ".join(
        f'SELECT count(*) AS n FROM "{name}" WHERE load_id IS NOT NULL '
        "AND load_id NOT IN (SELECT load_id FROM _segflow_pushed)" for name in names)
    return int(store.raw.execute(f"SELECT coalesce(sum(n), 0) FROM ({counts})").fetchone()[0])
