"""A load of the Spark ingest compared with the rows of its source already in the warehouse
(committed, or written by an earlier load of the same run): what the DuckDB ingest's
``against_store`` classification does (:func:`segflow.sources._load.classify`), as Spark
joins.

- a row that passed the rules and equals a stored row of the source (with a key: the stored
  row of its key, on every canonical column; else on the duplicate columns) is ``loaded``:
  a duplicate, logged as ``already_loaded``;
- a row whose key is stored with other values would be a late correction (``replace``):
  the Spark store keeps canonical rows append-only, so such a load stops with a one-line
  error naming the file, the row and the key (:func:`refuse_corrections`);
- a row quarantined under a rule with the same raw row as a quarantine record of the
  source is ``seen`` (logged as ``already_quarantined``, not quarantined again); so is a
  malformed CSV row whose text is quarantined already (:func:`seen_quarantined`).

Files read before under the same name (a re-delivery, ``--force``, a URL or table read
whole again) are refused before the run starts (:func:`refuse_rereads`): comparing them
with their own earlier rows (stale rows, released quarantine, ``redelivery``) is not done on
Spark yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segflow.errors import InputError
from segflow.sources._rules import duplicate_columns, row_key
from segflow.store import CANONICAL_TABLES

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from segflow.config import SourceSettings
    from segflow.store._spark import SparkStore

#: What a user can do about a load the Spark ingest cannot compare with earlier rows.
ON_DUCKDB = ("ingest with --engine duckdb and copy the store with `segflow warehouse push` "
             "(docs/scale.md)")
INSTEAD = f"load it into a new warehouse, or {ON_DUCKDB}"


def refuse_rereads(loads: list[tuple[SourceSettings, str, bool, bool]]) -> None:
    """Stop before any Spark work when a file to load was read before under its name, with
    rows: (source, label, ``again``: ``--force`` on an unchanged file, ``url``: a URL or
    table read whole at every ingest) per such load.

    Raises
    ------
    InputError
        One line naming the file and the source, with the ways round it.
    """
    if not loads:
        return
    source, label, again, url = loads[0]
    what = ("--force reads again a file whose rows are already in the warehouse" if again
            else "the source is a URL or table, read whole at every ingest, and has rows "
            "in the warehouse from an earlier ingest" if url
            else "the file was loaded before and has changed since (a re-delivery)")
    raise InputError(f"source {source.name!r}: {what}; comparing a file with the rows it "
                     "stored before (stale rows, redelivery, released quarantine) is not "
                     f"done on Spark yet: {INSTEAD}", file=label)


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


def refuse_corrections(cls: DataFrame, source: SourceSettings, label: str,
                       mapped: set[str]) -> None:
    """Stop the load (inside its run: nothing becomes visible) when a row of it would
    replace a stored row of its source (status ``replace``, :func:`mark_stored`).

    Raises
    ------
    InputError
        Naming the file, the first such row and its key column and value.
    """
    from pyspark.sql import functions as F

    key = row_key(source, mapped) or "transaction_id"
    first = cls.where(F.col("_status") == "replace").orderBy("_row").select(
        "_row", f"v_{key}").limit(1).collect()
    if first:
        row, value = first[0]
        raise InputError(f"{key} {value!r} is in the warehouse already with other values "
                         "(a late correction of an earlier file of the source); replacing "
                         f"stored rows is not done on Spark yet: {INSTEAD}",
                         file=label, row=int(row), column=key)


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
