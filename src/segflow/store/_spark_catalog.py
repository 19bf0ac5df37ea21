"""The Spark store's tables in the session catalog, for users' own SQL
(:meth:`segflow.store.SparkStore.register_catalog_tables`).

Every stored table has two names in ``<database>``:

- ``<table>_by_run``: the external Parquet table over its folder, partitioned by ``run_id``:
  every partition, committed or not, every row written (retracted ones included);
- ``<table>``: a view of its committed state, what :meth:`SparkStore.dataframe` reads: the
  rows of the runs with an ``ok`` row in ``runs``, less the rows the committed ``retracted``
  takes back (:data:`~segflow.store._spark_layout.RETRACTABLE` tables), and for a table
  replaced by its runs the rows of the latest committed run that wrote it (per key for a
  keyed one; "latest": the ``ok`` row's ``finished_at``, then ``run_id``, as
  :meth:`SparkStore.committed_runs` orders them).

``runs`` is the run log itself (a table); ``segment_assignments`` a view over the views of
``segment_spells`` and ``segment_snapshots`` (the DuckDB store's SQL). The views are plain
Spark SQL over the ``_by_run`` tables and ``runs``, so they follow the partitions those
tables list: the ones present when they were registered (register again after new runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segflow.errors import StoreError
from segflow.store._spark_layout import RETRACTABLE, RUNS, TABLES, VIEWS, spark_ddl

if TYPE_CHECKING:  # pragma: no cover
    from segflow.store._spark import SparkStore

#: Suffix of the raw (every partition) table of a stored table in the catalog.
BY_RUN = "_by_run"


def register(store: SparkStore) -> list[str]:
    """Register the tables of ``store`` that have partitions (see the module notes); returns
    the names of the views made, sorted.

    Raises
    ------
    StoreError
        A managed table (not segflow's) holds the name of a view to make.
    """
    db = f"`{store.database}`"
    present = {name for name in [*TABLES, "runs"] if store._partitions(name)}
    for name in sorted(present):
        spec = TABLES.get(name)
        cols = spark_ddl(RUNS) if spec is None else (
            spark_ddl(spec.columns) if spec.columns is not None else None)
        raw = name if name == "runs" else name + BY_RUN
        table = f"{db}.`{raw}`"
        schema = f"({cols}) " if cols else ""
        _drop_external(store, raw)  # an earlier registration: perhaps of another folder
        store.session.sql(f"CREATE TABLE {table} {schema}USING parquet "
                          f"PARTITIONED BY (run_id) LOCATION '{store.root}/{name}'")
        store.session.sql(f"MSCK REPAIR TABLE {table}")
    if "runs" not in present:
        return []
    made = []
    for name in sorted(present - {"runs"}, key=lambda n: (n != "retracted", n)):  # read by others
        _view(store, name, _select(store.database, name, "retracted" in present))
        made.append(name)
    for name, sources in VIEWS.items():
        if set(sources) <= present:
            from segflow.store._spells import ASSIGNMENTS_SELECT

            _view(store, name, ASSIGNMENTS_SELECT.format(
                spells=f"{db}.`segment_spells`", snapshots=f"{db}.`segment_snapshots`"))
            made.append(name)
    return sorted(made)


def _view(store: SparkStore, name: str, select: str) -> None:
    """``<database>.<name>`` as the view ``select``; the external table an earlier segflow
    registered under that name (every partition) is dropped first (its files stay)."""
    _drop_external(store, name)
    store.session.sql(f"CREATE OR REPLACE VIEW `{store.database}`.`{name}` AS {select}")


def _drop_external(store: SparkStore, name: str) -> None:
    """Drop ``<database>.<name>`` from the catalog if it is an external table (its files
    stay: segflow registers its tables as such) or a view; refuse to touch a managed one."""
    full = f"{store.database}.{name}"
    if not store.session.catalog.tableExists(full):
        return
    kind = store.session.catalog.getTable(full).tableType
    if kind not in ("EXTERNAL", "VIEW"):
        raise StoreError(f"cannot register {full}: a {kind.lower()} table of that name exists "
                         "in the catalog (not segflow's: drop or rename it)")
    store.session.sql(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} `{store.database}`.`{name}`")


def _select(database: str, name: str, retracted: bool) -> str:
    """The SQL of the committed state of stored table ``name`` (see the module notes);
    ``retracted``: the store has a ``retracted`` table to leave rows out by."""
    db = f"`{database}`"
    t = f"{db}.`{name}{BY_RUN}`"
    ok = f"(SELECT run_id, finished_at FROM {db}.`runs` WHERE status = 'ok')"
    keys = TABLES[name].keys
    if keys is None:  # append: every committed run's rows
        sql = f"SELECT t.* FROM {t} t LEFT SEMI JOIN {ok} o ON t.run_id = o.run_id"
        if retracted and name in RETRACTABLE:
            col = RETRACTABLE[name]
            row = "r.row_number IS NULL" + (f" OR r.row_number = t.`{col}`" if col else "")
            sql += (f" WHERE NOT EXISTS (SELECT 1 FROM {db}.`retracted` r WHERE r.table_name = "
                    f"'{name}' AND r.run_of = t.run_id AND r.load_id = t.load_id AND ({row}))")
        return sql
    if keys == ():  # replaced whole: the latest committed run that wrote it
        latest = (f"SELECT o.run_id FROM {ok} o LEFT SEMI JOIN (SELECT DISTINCT run_id FROM {t}) "
                  "p ON o.run_id = p.run_id ORDER BY o.finished_at DESC, o.run_id DESC LIMIT 1")
        return f"SELECT t.* FROM {t} t WHERE t.run_id = ({latest})"
    # replaced per key: per key, the rows of the latest committed run that wrote it
    columns = TABLES[name].columns
    assert columns is not None
    key_cols = ", ".join(f"`{k}`" for k in keys)
    on = " AND ".join(f"c.`{k}` <=> l.`{k}`" for k in keys)
    cols = ", ".join(f"c.`{c}`" for c in [*columns, "run_id"])
    return (f"WITH c AS (SELECT t.*, struct(o.finished_at, o.run_id) AS _sf_at FROM {t} t "
            f"JOIN {ok} o ON t.run_id = o.run_id), "
            f"l AS (SELECT {key_cols}, max(_sf_at) AS _sf_at FROM c GROUP BY {key_cols}) "
            f"SELECT {cols} FROM c JOIN l ON {on} AND c._sf_at = l._sf_at")

