"""What the report and ``segflow serve`` read, taken from a Spark warehouse into DuckDB, so
that :mod:`segflow.report`, :mod:`segflow.summaries` and :mod:`segflow.server` run unchanged.

Only small tables come to the driver for the report: the aggregates of the latest committed
run on Spark (``summary_segments``: one row per snapshot and segment; ``summary_transitions``:
one per pair of snapshots and cell; the segment profiles; the data audit; the model results:
CLV diagnostics, campaign read-outs, forecasts and overview totals, one JSON document each;
the fitted BTYD and cluster models), the run log (the last state of every run), the load log and the
quarantine (the rows ingest refused). A warehouse whose run stored no overview document (an
older segflow's) gets its totals computed by Spark from the warehouse's transactions.

The dashboard (:func:`fill_served_copy`) also takes the customer-level tables its analyst
routes read: ``customers``, the change rows ``segment_spells`` with ``segment_snapshots``
(the per-snapshot ``segment_assignments`` is a view over them), ``customer_scores``,
``customer_features`` (latest snapshot), ``scheme_registry``, ``campaign_exposures`` (the
campaign list; a campaign's read-out is the run's stored one) and ``survey_responses`` (their
questions fix the survey columns of ``POST /api/v1/score``'s features, as on DuckDB) -- one or
a few rows per customer. Transactions and events stay in the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from segflow.errors import SegflowError
from segflow.store import Store

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from segflow.store._spark import SparkStore

#: Tables the report reads, copied whole from the warehouse's committed state.
COPIED = ("summary_segments", "summary_transitions", "summary_profiles",
          "summary_profile_segments", "summary_audit", "summary_results", "model_params",
          "cluster_models", "loads", "quarantine")
#: The customer-level tables the dashboard's analyst routes read (not transactions, events).
CUSTOMER_TABLES = ("customers", "segment_spells", "segment_snapshots", "customer_scores",
                   "customer_features", "scheme_registry", "campaign_exposures",
                   "survey_responses")
#: Tables of a served copy kept from the project's DuckDB store: the server's own records
#: (API tokens, the audit log of requests) and the schema version.
KEPT = ("api_tokens", "audit_log", "schema_info")


def aggregates_store(warehouse: SparkStore) -> Store:
    """An in-memory DuckDB :class:`~segflow.store.Store` holding what the report reads from
    ``warehouse`` (see the module notes); the aggregates keep the ``run_id`` of their run.

    Raises
    ------
    SegflowError
        The warehouse has no committed run with aggregates (run ``segflow run`` first).
    """
    store = Store(":memory:")
    fill_from_warehouse(store.raw, warehouse, COPIED)
    return store


def fill_served_copy(path: Path, warehouse: SparkStore) -> None:
    """Make the DuckDB file at ``path`` (a private copy of the project's DuckDB store, made by
    :mod:`segflow.server._replica`) show the warehouse: every table but :data:`KEPT` is
    emptied, then the report's tables and :data:`CUSTOMER_TABLES` are filled from the
    warehouse's committed state (see the module notes).

    Raises
    ------
    SegflowError
        The warehouse has no committed run with aggregates.
    """
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("BEGIN TRANSACTION")
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema = 'main'").fetchall()]
        for name in tables:
            if name not in KEPT:
                con.execute(f'DELETE FROM "{name}"')
        fill_from_warehouse(con, warehouse, (*COPIED, *CUSTOMER_TABLES))
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def fill_from_warehouse(con: Any, warehouse: SparkStore, names: Iterable[str]) -> None:
    """Insert into the DuckDB connection ``con`` (a segflow store's tables, empty) the
    committed state of the warehouse's tables ``names`` (those it has; columns matched by
    name, ``run_id`` kept where the DuckDB table has it; ``customer_features`` replaced
    whole), its run log (the last state of every run: ``ok`` or ``failed`` over ``running``)
    and, when the run stored none, the overview totals of the aggregates' run.

    Raises
    ------
    SegflowError
        The warehouse has no committed run with aggregates (run ``segflow run`` first).
    """
    from segflow.summaries._results import dumps, overview_document, store_results

    present = warehouse.tables()
    if "summary_segments" not in present:
        raise SegflowError(f"the warehouse {warehouse.root} has no segment aggregates yet; "
                           "run `segflow run` (on Spark) first")
    segments = warehouse.dataframe("summary_segments")
    run_id = segments.select("run_id").limit(1).collect()[0].run_id
    _copy(con, warehouse, names, present)
    if con.execute("SELECT count(*) FROM summary_results WHERE name = 'overview'").fetchone()[0]:
        return
    latest = segments.agg({"snapshot_date": "max"}).collect()[0][0]
    # the totals of the transactions, computed by Spark (revenue_totals is an Ibis expression)
    store_results(con, [("overview", latest, dumps(overview_document(warehouse)))], run_id)  # type: ignore[arg-type]


def tables_store(warehouse: SparkStore, names: Iterable[str]) -> Store:
    """An in-memory DuckDB :class:`~segflow.store.Store` holding the committed state of the
    warehouse's tables ``names`` (those it has; see :func:`fill_from_warehouse`) and its run
    log: what a CLI command that reads the store reads on a Spark project (for example
    ``("segment_spells", "segment_snapshots")`` for ``segflow migrate``, whose
    ``segment_assignments`` is the store's view over them). Unlike :func:`aggregates_store`
    it needs no committed run (``campaign_exposures`` come with the ingest)."""
    store = Store(":memory:")
    _copy(store.raw, warehouse, names, warehouse.tables())
    return store


def _copy(con: Any, warehouse: SparkStore, names: Iterable[str], present: Iterable[str]) -> None:
    """Insert the committed state of the tables ``names`` found in ``present``, then the run
    log (the last state of every run), into the DuckDB connection ``con``."""
    present = set(present)
    for name in names:
        if name in present:
            _insert(con, name, warehouse.dataframe(name).toArrow())
    log = warehouse.runs().toArrow()
    con.register("_sf_runs", log)
    try:
        con.execute("INSERT INTO runs SELECT run_id, command, params, segflow_version, started_at, "
                    "finished_at, status, message FROM _sf_runs QUALIFY row_number() OVER ("
                    "PARTITION BY run_id ORDER BY status = 'running', finished_at DESC NULLS LAST) = 1")
    finally:
        con.unregister("_sf_runs")


def _insert(con: Any, name: str, rows: Any) -> None:
    con.register("_sf_rows", rows)
    try:
        if name == "customer_features":  # its columns follow the features: replaced whole
            con.execute('CREATE OR REPLACE TABLE customer_features AS '
                        'SELECT * EXCLUDE (run_id) FROM _sf_rows')
            return
        if name == "cluster_models":  # created by the first cluster run, not with the store
            from segflow.segments._cluster_scheme import CLUSTER_MODELS_DDL

            con.execute(CLUSTER_MODELS_DDL)
        have = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = 'main' ORDER BY ordinal_position", [name]).fetchall()]
        cols = ", ".join(f'"{c}"' for c in have if c in rows.column_names)
        con.execute(f'INSERT INTO "{name}" ({cols}) SELECT {cols} FROM _sf_rows')
    finally:
        con.unregister("_sf_rows")
