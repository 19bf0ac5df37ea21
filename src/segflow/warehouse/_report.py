"""The report's reader of a Spark warehouse: what the report reads, taken from the warehouse
into a small in-memory DuckDB store, so that :mod:`segflow.report` (and the readers of
:mod:`segflow.summaries` it uses) run unchanged.

Only small tables travel to the driver: the aggregates of the latest committed run on
Spark (``summary_segments``: one row per snapshot and segment; ``summary_transitions``: one
per pair of snapshots and cell), that run's row of the run log, the load log and the
quarantine (the rows ingest refused). The overview totals (revenue, transactions,
customers) are computed by Spark from the warehouse's transactions. Customer-level tables
(assignments, scores, features, transactions) stay in the warehouse: the report's sections
that need them (CLV diagnostics, campaign read-outs, segment profiles, the data audit) are
left out of a report built from a warehouse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segflow.errors import SegflowError
from segflow.store import Store

if TYPE_CHECKING:  # pragma: no cover
    from segflow.store._spark import SparkStore

#: Tables copied whole from the warehouse's committed state.
COPIED = ("summary_segments", "summary_transitions", "loads", "quarantine")


def aggregates_store(warehouse: SparkStore) -> Store:
    """An in-memory DuckDB :class:`~segflow.store.Store` holding what the report reads from
    ``warehouse`` (see the module notes); the aggregates keep the ``run_id`` of their run.

    Raises
    ------
    SegflowError
        The warehouse has no committed run with aggregates (run ``segflow run`` first).
    """
    from segflow.summaries._results import dumps, overview_document, store_results

    if "summary_segments" not in warehouse.tables():
        raise SegflowError(f"the warehouse {warehouse.root} has no segment aggregates yet; "
                           "run `segflow run` (on Spark) first")
    runs = warehouse.runs()
    segments = warehouse.dataframe("summary_segments")
    run_id = segments.select("run_id").limit(1).collect()[0].run_id
    store = Store(":memory:")
    for name in COPIED:
        if name not in warehouse.tables():
            continue
        df = warehouse.dataframe(name)
        if name not in ("summary_segments", "summary_transitions"):
            df = df.drop("run_id")
        rows = df.toArrow()
        cols = ", ".join(f'"{c}"' for c in rows.column_names)
        store.raw.register("_sf_rows", rows)
        store.raw.execute(f'INSERT INTO "{name}" ({cols}) SELECT {cols} FROM _sf_rows')
        store.raw.unregister("_sf_rows")
    row = runs.where(f"run_id = '{run_id}' AND status = 'ok'").collect()[0]
    store.raw.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      [run_id, row.command, row.params, row.segflow_version, row.started_at,
                       row.finished_at, row.status, row.message])
    latest = segments.agg({"snapshot_date": "max"}).collect()[0][0]
    # the totals of the transactions, computed by Spark (revenue_totals is an Ibis expression)
    store_results(store.raw, [("overview", latest, dumps(overview_document(warehouse)))], run_id)  # type: ignore[arg-type]
    return store
