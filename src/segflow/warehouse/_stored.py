"""A load of the Spark ingest compared with the rows of its source already in the warehouse
(committed, or written by an earlier load of the same run): what the DuckDB ingest's
``against_store`` classification does (:func:`segflow.sources._load.classify`), as Spark
joins.

- a row that passed the rules and equals a stored row of the source (with a key: the stored
  row of its key, on every canonical column; else on the duplicate columns) is ``loaded``:
  a duplicate, logged as ``already_loaded``;
- a row whose key is stored with other values is a late correction (``replace``): the
  stored rows of its key are taken back (:func:`retract_replaced`: rows of the store's
  ``retracted`` table, written in the load's run before its own rows) and it is written;
- a row quarantined under a rule with the same raw row as a quarantine record of the
  source is ``seen`` (logged as ``already_quarantined``, not quarantined again); so is a
  malformed CSV row whose text is quarantined already (:func:`seen_quarantined`).

A file read before under the same name (a re-delivery, ``--force``) is compared with its
own earlier rows as :mod:`segflow.sources._redeliver` does on DuckDB: the rows stored from
it that the new delivery does not restate are counted (:func:`stale_count`), or, with
``redelivery = "replace"``, its earlier rows are taken back before it is read
(:func:`forget_file`, :func:`note_overlap`). Its quarantine records whose rows pass now are
released by :mod:`segflow.warehouse._ingest_write`. A URL or table read again is compared
with the stored rows alone (as a database table on DuckDB). Refused with a one-line error:
transaction lines without any id read again under their name (:func:`refuse_lines`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segflow.errors import InputError
from segflow.sources._redeliver import forgot_message, note_restated
from segflow.sources._rules import duplicate_columns, row_key
from segflow.store import CANONICAL_TABLES

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from segflow.config import SourceSettings
    from segflow.sources._load import LoadCounts
    from segflow.store._spark import SparkStore

#: What a user can do about a load the Spark ingest cannot compare with earlier rows.
ON_DUCKDB = ("ingest with --engine duckdb and copy the store with `segflow warehouse push` "
             "(docs/scale.md)")
INSTEAD = f"load it into a new warehouse, or {ON_DUCKDB}"


def _stored(store: SparkStore, run_id: str, source: SourceSettings, cols: list[str]) -> DataFrame:
    """The distinct values of ``cols`` (as ``_t_<col>``) over the stored rows of ``source``,
    with ``_t_hit`` (true) to tell a match in a left join."""
    from pyspark.sql import functions as F

    df = store.dataframe(source.table, pending=run_id)
    return (df.where(df.source == source.name)
            .select(*[F.col(f"`{c}`").alias(f"_t_{c}") for c in cols]).distinct()
            .withColumn("_t_hit", F.lit(True)))


def mark_stored(store: SparkStore, run_id: str, source: SourceSettings, val: DataFrame,
                present: list[str], mapped: set[str], stored: bool) -> DataFrame:
    """``val`` (validated rows) with ``_store``: ``loaded`` or ``replace`` for a row that
    passed the rules and matches a stored row of the source (see the module notes), else
    null (every row when nothing of the source is ``stored``).

    Order lines (``rollup``) are compared as orders, after the roll-up (not here); lines
    without any id have no identity to compare (a new file adds them all, as on DuckDB).
    """
    from pyspark.sql import functions as F

    none = F.lit(None).cast("string")
    key = row_key(source, mapped)
    dup = duplicate_columns(source, present, mapped)
    rollup = source.rollup and source.table == "transactions"
    if not stored or rollup or (key is None and dup is None):
        return val.withColumn("_store", none)
    cols = [c for c in CANONICAL_TABLES[source.table] if c in (present if key else dup)]
    t = _stored(store, run_id, source, cols)
    free = val["_rule"].isNull()
    if key:
        on = [val[f"v_{key}"] == t[f"_t_{key}"], free]
    else:
        on = [*(val[f"v_{c}"].eqNullSafe(t[f"_t_{c}"]) for c in cols), free]
    same = F.lit(True)
    for c in cols:
        same = same & val[f"v_{c}"].eqNullSafe(t[f"_t_{c}"])
    marked = val.join(t, on, "left").withColumn(
        "_store", F.when(F.col("_t_hit").isNull(), none)
        .when(same, F.lit("loaded")).otherwise(F.lit("replace")))
    return marked.select(*val.columns, "_store")


def retract_replaced(store: SparkStore, run_id: str, source: SourceSettings, key: str,
                     keys: DataFrame) -> None:
    """Take back (in run ``run_id``) the stored rows of ``source`` whose key is one of
    ``keys`` (column ``_k``: the ``key`` values of the load's rows with status ``replace``), as the
    DuckDB ingest deletes them before it inserts their corrections
    (:func:`segflow.sources._load.write`). Written before the load's own rows, so that
    those are not taken back with them."""
    from pyspark.sql import functions as F

    df = store.dataframe(source.table, pending=run_id)
    hit = df.where(df.source == source.name).join(keys, df[key] == keys["_k"], "left_semi")
    store.write("retracted", hit.select(
        F.lit(source.table).alias("table_name"), F.col("run_id").alias("run_of"), "load_id",
        F.col("source_row").alias("row_number")), run_id, count=False)


def stale_count(store: SparkStore, run_id: str, source: SourceSettings, label: str,
                cls: DataFrame | None, present: list[str], mapped: set[str]) -> int:
    """The rows stored from earlier deliveries of the file ``label`` that its new delivery
    (classified rows ``cls`` with their ``v_`` columns; None: a file without rows) does not
    restate, as :func:`segflow.sources._redeliver.stale_rows` counts them (one Spark job):
    with a key, those whose key no row of it has; else those no row of it equals on the
    duplicate columns. Lines without any id are refused before (:func:`refuse_lines`)."""
    from pyspark.sql import functions as F

    df = store.dataframe(source.table, pending=run_id)
    mine = df.where((df.source == source.name) & (df.source_file == label))
    if cls is None:
        return mine.count()
    key = row_key(source, mapped)
    if key:
        new = cls.select(F.col(f"v_{key}").alias("_k")).distinct()
        return mine.join(new, mine[key] == new["_k"], "left_anti").count()
    dup = duplicate_columns(source, present, mapped) or []
    cols = [c for c in CANONICAL_TABLES[source.table] if c in dup]
    new = cls.select(*[F.col(f"v_{c}").alias(f"_n_{c}") for c in cols]).distinct()
    on = [mine[f"`{c}`"].eqNullSafe(new[f"_n_{c}"]) for c in cols]
    return mine.join(new, on, "left_anti").count()


def refuse_lines(source: SourceSettings, present: list[str], mapped: set[str],
                 label: str) -> None:
    """Stop a load read before under its name whose rows have no identity (transaction
    lines without ``transaction_id`` or ``duplicate_key``): the DuckDB ingest recognises
    such a file only when it grew at its end (``_grown_lines``), which is not done on
    Spark.

    Raises
    ------
    InputError
        One line naming the file and the source, with the ways round it.
    """
    if row_key(source, mapped) is None and duplicate_columns(source, present, mapped) is None:
        raise InputError(f"source {source.name!r}: it was loaded before and its "
                         "transaction lines have no id (no transaction_id, no duplicate_key), "
                         "so its rows cannot be compared with those it stored; that is not "
                         f"done on Spark yet: {INSTEAD}", file=label)


def seen_quarantined(store: SparkStore, run_id: str, source: SourceSettings,
                     quarantined: DataFrame) -> list[tuple[int, str]]:
    """(``_row``, ``_rule``) of the rows of ``quarantined`` (``_row``, ``_rule``,
    ``_raw_row``) whose raw row and rule equal a quarantine record of the source (``seen``:
    not quarantined again), from one Spark job."""
    q = store.dataframe("quarantine", pending=run_id)
    known = q.where(q.source == source.name).select(
        q.raw_row.alias("_raw_row"), q.rule.alias("_rule")).distinct()
    return [(r._row, r._rule) for r in quarantined.join(
        known, ["_raw_row", "_rule"], "left_semi").select("_row", "_rule").collect()]


def mark_orders(store: SparkStore, run_id: str, source: SourceSettings,
                orders: DataFrame) -> DataFrame:
    """The orders of a roll-up load (order lines) against the stored orders of its source,
    as :func:`segflow.sources._load.rollup_orders` compares them: an order equal to the
    stored order of its ``transaction_id`` (every canonical column) is ``loaded``, one with
    other values ``replace`` (``_ostatus``)."""
    from pyspark.sql import functions as F

    cols = list(CANONICAL_TABLES["transactions"])
    t = _stored(store, run_id, source, cols)
    same = F.lit(True)
    for c in cols:
        same = same & orders[c].eqNullSafe(t[f"_t_{c}"])
    marked = orders.join(t, orders["transaction_id"] == t["_t_transaction_id"], "left")
    marked = marked.withColumn("_ostatus", F.when(F.col("_t_hit").isNull(), F.col("_ostatus"))
                               .when(same, F.lit("loaded")).otherwise(F.lit("replace")))
    return marked.select(*orders.columns)


def order_lines(cls: DataFrame, orders: DataFrame) -> DataFrame:
    """The classified lines ``cls`` of a roll-up load, the accepted ones of an order that
    :func:`mark_orders` found stored taking its status (and losing their flags: only the
    rows written are flagged)."""
    from pyspark.sql import functions as F

    hit = orders.where(F.col("_ostatus") != "accepted").select(
        F.col("transaction_id").alias("_o_id"), F.col("_ostatus").alias("_o_status"))
    lines = cls.join(hit, (cls["v_transaction_id"] == hit["_o_id"])
                     & (cls["_status"] == "accepted"), "left")
    lines = lines.withColumn("_status", F.coalesce(F.col("_o_status"), F.col("_status")))
    kept = F.col("_status").isin("accepted", "replace")
    return lines.select(*[(F.col(c) & kept).alias(c) if c[:2] == "_f" and c[2:].isdigit()
                          else F.col(c) for c in cls.columns])


def forget_file(store: SparkStore, run_id: str, source: SourceSettings,
                counts: LoadCounts) -> None:
    """``redelivery = "replace"``: take back (in run ``run_id``, before the new delivery is
    read) what the earlier deliveries of the file stored, as
    :func:`segflow.sources._redeliver.forget_file` deletes it: the canonical rows,
    quarantine records, logged duplicates and flags of its ``ok`` loads, whose load rows
    become ``replaced`` (taken back, and written again with that status); warn with the
    rows removed."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    label = counts.source_file
    loads = store.dataframe("loads", pending=run_id)
    old = loads.where((loads.source == source.name) & (loads.source_file == label)
                      & (loads.status == "ok")).collect()
    rows = store.dataframe(source.table, pending=run_id)
    removed = rows.where((rows.source == source.name) & (rows.source_file == label)).count()
    if old:
        tables = [source.table, "quarantine", "ingest_duplicates", "ingest_flags", "loads"]
        store.write("retracted", pa.table({
            "table_name": [t for t in tables for _ in old],
            "run_of": [r.run_id for _ in tables for r in old],
            "load_id": [r.load_id for _ in tables for r in old],
            "row_number": pa.array([None] * (len(tables) * len(old)), pa.int64())}), run_id)
        again = store.session.createDataFrame(old, loads.schema).drop("run_id").withColumn(
            "status", F.lit("replaced"))
        store.write("loads", again, run_id, count=False)
    counts.warn_file(forgot_message(label, removed))


def note_overlap(store: SparkStore, run_id: str, source: SourceSettings,
                 by: dict[str, int], counts: LoadCounts) -> None:
    """After :func:`forget_file`: the warning of
    :func:`segflow.sources._redeliver.note_overlap` when files of the source restate each
    other's rows (``by``: the load's rows per status)."""
    here = by.get("loaded", 0) + by.get("replace", 0)
    d = store.dataframe("ingest_duplicates", pending=run_id)
    there = d.where((d.source == source.name) & (d.source_file != counts.source_file)
                    & (d.kind == "already_loaded")).count()
    note_restated(counts, source, here, there)
