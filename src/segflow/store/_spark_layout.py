"""What the Spark store keeps: its tables, their columns and how a run's rows replace others.

Every table of the Spark store is a Parquet dataset ``<warehouse>/<database>.db/<table>``
partitioned by ``run_id``: a run writes only new partitions and never touches committed
ones. How a table's committed partitions combine into its current state is its *mode*:

- ``append``: every committed run's rows (canonical tables, quarantine, loads, registry);
- ``replace``: the rows of the latest committed run that wrote the table (latest features);
- ``replace by keys``: per key (e.g. scheme and snapshot date), the rows of the latest
  committed run that wrote that key (change rows, scores), like the DuckDB store's
  delete-then-insert of a run.

Rows of an append table are taken back by later runs through the append table
``retracted`` (:data:`RETRACTED`): a row of ``(run, load, row number)`` hides that row of
that run's partition of its table (no row number: every row of the load there), as the
DuckDB ingest's ``DELETE``. The Spark ingest writes them when a load replaces stored rows
(a late correction, a re-delivered file), releases quarantined rows, or forgets a file's
earlier deliveries (``redelivery = "replace"``); :data:`RETRACTABLE` names the tables.

Some tables are not stored but derived (:data:`VIEWS`), as the DuckDB store's views are:
the per-snapshot ``segment_assignments`` is the change rows ``segment_spells`` expanded to
the computed snapshots of ``segment_snapshots`` (the DuckDB view's own SQL,
:data:`segflow.store._spells.ASSIGNMENTS_SELECT`). A warehouse written by an earlier
segflow also has a stored ``segment_assignments`` folder, which is no longer read (``vacuum``
removes it: :data:`RETIRED`).
"""

from __future__ import annotations

from dataclasses import dataclass

from segflow.store._schema import CANONICAL_TABLES, LINEAGE_COLUMNS


@dataclass(frozen=True)
class TableSpec:
    """A table of the Spark store.

    columns : column -> DuckDB type name, in order (without ``run_id``); ``None`` when the
        columns vary by project (they are then read from the committed files).
    keys : ``None`` for append mode, ``()`` to replace the whole table, or the key columns.
    """

    columns: dict[str, str] | None
    keys: tuple[str, ...] | None = None


QUARANTINE = {
    "source": "VARCHAR", "source_file": "VARCHAR", "row_number": "BIGINT", "raw_row": "VARCHAR",
    "rule": "VARCHAR", "reason": "VARCHAR", "column_name": "VARCHAR", "load_id": "VARCHAR",
    "ingested_at": "TIMESTAMP",
}
LOADS = {
    "load_id": "VARCHAR", "source": "VARCHAR", "source_file": "VARCHAR", "file_hash": "VARCHAR",
    "target_table": "VARCHAR", "rows_read": "BIGINT", "rows_accepted": "BIGINT",
    "rows_quarantined": "BIGINT", "rows_duplicate": "BIGINT", "started_at": "TIMESTAMP",
    "finished_at": "TIMESTAMP", "status": "VARCHAR", "rows_stale": "BIGINT",
}
DUPLICATES = {
    "source": "VARCHAR", "source_file": "VARCHAR", "row_number": "BIGINT", "kind": "VARCHAR",
    "duplicate_of_row": "BIGINT", "load_id": "VARCHAR",
}
FLAGS = {
    "source": "VARCHAR", "source_file": "VARCHAR", "row_number": "BIGINT", "rule": "VARCHAR",
    "column_name": "VARCHAR", "value": "VARCHAR", "load_id": "VARCHAR",
}
#: Rows taken back: those of ``table_name`` written by run ``run_of`` for load ``load_id``,
#: the one numbered ``row_number`` (in the table's :data:`RETRACTABLE` column) or all.
RETRACTED = {"table_name": "VARCHAR", "run_of": "VARCHAR", "load_id": "VARCHAR",
             "row_number": "BIGINT"}
RUNS = {
    "command": "VARCHAR", "params": "VARCHAR", "segflow_version": "VARCHAR",
    "started_at": "TIMESTAMP", "finished_at": "TIMESTAMP", "status": "VARCHAR",
    "message": "VARCHAR",
}
#: Columns of the derived ``segment_assignments`` (``run_id``: that of its snapshot's run).
ASSIGNMENTS = {
    "scheme": "VARCHAR", "scheme_version": "VARCHAR", "snapshot_date": "DATE",
    "customer_id": "VARCHAR", "segment": "VARCHAR", "segment_rank": "INTEGER",
}
SCORES = {
    "snapshot_date": "DATE", "customer_id": "VARCHAR", "model": "VARCHAR", "score": "VARCHAR",
    "value": "DOUBLE",
}
SPELLS = {
    "scheme": "VARCHAR", "scheme_version": "VARCHAR", "customer_id": "VARCHAR",
    "segment": "VARCHAR", "segment_rank": "INTEGER", "valid_from": "DATE", "valid_to": "DATE",
}
SNAPSHOTS = {"scheme": "VARCHAR", "scheme_version": "VARCHAR", "snapshot_date": "DATE",
             "settings_key": "VARCHAR", "computed_at": "TIMESTAMP"}
SUMMARY_SEGMENTS = {
    "scheme": "VARCHAR", "snapshot_date": "DATE", "segment": "VARCHAR", "segment_rank": "BIGINT",
    "customers": "BIGINT", "share": "DOUBLE", "revenue_12m": "DOUBLE", "revenue_share": "DOUBLE",
    "revenue_all_time": "DOUBLE", "scored_customers": "BIGINT", "mean_p_alive": "DOUBLE",
    "expected_purchases": "DOUBLE", "clv": "DOUBLE", "mean_clv": "DOUBLE", "clv_share": "DOUBLE",
}
SUMMARY_TRANSITIONS = {
    "scheme": "VARCHAR", "from_date": "DATE", "to_date": "DATE", "from_segment": "VARCHAR",
    "to_segment": "VARCHAR", "from_rank": "BIGINT", "to_rank": "BIGINT", "customers": "BIGINT",
    "revenue": "DOUBLE", "revenue_12m": "DOUBLE", "clv": "DOUBLE", "scored_customers": "BIGINT",
}
SUMMARY_PROFILE_SEGMENTS = {
    "scheme": "VARCHAR", "snapshot_date": "DATE", "segment": "VARCHAR", "name": "VARCHAR",
    "suggested_name": "VARCHAR", "distinguishing": "VARCHAR",
}
SUMMARY_PROFILES = {
    "scheme": "VARCHAR", "snapshot_date": "DATE", "segment": "VARCHAR", "feature": "VARCHAR",
    "mean": "DOUBLE", "median": "DOUBLE", "std_diff": "DOUBLE", "base_mean": "DOUBLE",
    "base_std": "DOUBLE", "base_median": "DOUBLE",
}
SUMMARY_AUDIT = {
    "as_of": "DATE", "check": "VARCHAR", "table": "VARCHAR", "severity": "VARCHAR",
    "count": "BIGINT", "total": "BIGINT", "share": "DOUBLE", "examples": "VARCHAR",
    "advice": "VARCHAR", "data_end": "DATE", "score": "DOUBLE", "created_at": "TIMESTAMP",
}
SUMMARY_RESULTS = {"name": "VARCHAR", "snapshot_date": "DATE", "document": "VARCHAR",
                   "created_at": "TIMESTAMP"}
#: The fitted BTYD models a run scored with (``POST /api/v1/score`` applies them).
MODEL_PARAMS = {"snapshot_date": "DATE", "model": "VARCHAR", "params": "VARCHAR",
                "fitted_at": "TIMESTAMP"}
#: The fitted models of cluster schemes (as the DuckDB store's ``cluster_models``).
CLUSTER_MODELS = {
    "scheme": "VARCHAR", "scheme_version": "VARCHAR", "method": "VARCHAR", "k": "INTEGER",
    "fitted_at": "TIMESTAMP", "snapshot_date": "DATE", "model_json": "VARCHAR",
}
SCHEME_REGISTRY = {
    "scheme": "VARCHAR", "scheme_version": "VARCHAR", "kind": "VARCHAR",
    "definition": "VARCHAR", "created_at": "TIMESTAMP",
}

#: The tables of the Spark store (the run log ``runs`` is kept apart: see SparkStore).
TABLES: dict[str, TableSpec] = {
    **{name: TableSpec({**cols, **LINEAGE_COLUMNS}) for name, cols in CANONICAL_TABLES.items()},
    "quarantine": TableSpec(QUARANTINE),
    "loads": TableSpec(LOADS),
    "ingest_duplicates": TableSpec(DUPLICATES),
    "ingest_flags": TableSpec(FLAGS),
    "retracted": TableSpec(RETRACTED),
    "customer_scores": TableSpec(SCORES, keys=("snapshot_date", "model")),
    "scheme_registry": TableSpec(SCHEME_REGISTRY),
    # a scheme version's model, fitted once (by the first run that assigns it), then re-applied
    "cluster_models": TableSpec(CLUSTER_MODELS, keys=("scheme", "scheme_version")),
    "customer_features": TableSpec(None, keys=()),
    # change rows of a run computed on Spark (every snapshot of a scheme: replaced per scheme);
    # the per-snapshot assignments are derived from them (VIEWS)
    "segment_spells": TableSpec(SPELLS, keys=("scheme",)),
    "segment_snapshots": TableSpec(SNAPSHOTS, keys=("scheme",)),
    # the report's aggregates (segflow.summaries): small, replaced by every run
    "summary_segments": TableSpec(SUMMARY_SEGMENTS, keys=()),
    "summary_transitions": TableSpec(SUMMARY_TRANSITIONS, keys=()),
    "summary_profile_segments": TableSpec(SUMMARY_PROFILE_SEGMENTS, keys=()),
    "summary_profiles": TableSpec(SUMMARY_PROFILES, keys=()),
    # written by the ingest (and by a run when the committed audit is older than the last load)
    "summary_audit": TableSpec(SUMMARY_AUDIT, keys=()),
    "summary_results": TableSpec(SUMMARY_RESULTS, keys=()),
    "model_params": TableSpec(MODEL_PARAMS, keys=("snapshot_date", "model")),
}

#: The tables whose rows can be retracted, and the column that numbers a row of a load
#: (``None``: a load has one row there, taken back whole).
RETRACTABLE: dict[str, str | None] = {
    **{name: "source_row" for name in CANONICAL_TABLES}, "quarantine": "row_number",
    "ingest_duplicates": "row_number", "ingest_flags": "row_number", "loads": None,
}

#: Derived tables: name -> the stored tables they read (all present, or the view is empty).
VIEWS: dict[str, tuple[str, ...]] = {"segment_assignments": ("segment_spells", "segment_snapshots")}

#: Table folders an older segflow stored and this one no longer reads (removed by vacuum).
RETIRED = ("segment_assignments",)

_SPARK_TYPES = {
    "VARCHAR": "string", "TIMESTAMP": "timestamp_ntz", "DOUBLE": "double", "BIGINT": "bigint",
    "INTEGER": "int", "BOOLEAN": "boolean", "DATE": "date",
}


def spark_ddl(columns: dict[str, str], *, run_id: bool = True) -> str:
    """A Spark DDL schema string (``"a string, b double"``) for DuckDB-typed columns."""
    parts = [f"`{c}` {_SPARK_TYPES[t]}" for c, t in columns.items()]
    if run_id:
        parts.append("`run_id` string")
    return ", ".join(parts)
