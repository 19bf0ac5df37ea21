"""Transaction lines without ids that repeat a block, on Spark: the DuckDB ingest's two
checks (:mod:`segflow.sources._repeats`: the rules, the warnings and the ``repeated_lines``
flags) as Spark jobs over the rows a load wrote in its run.

- in the file, when some lines are equal (one aggregation, which also gives the time span):
  the lines whose hash occurs twice or more, a window over them
  (their previous three occurrences), runs of one distance over two orders or more, each
  line compared with the line it repeats exactly;
- across files: only when another file of the source has a line in the load's time span
  (one lookup), the days whose lines are all stored already from other files, as grouped
  multisets, when they hold lines of two orders or more.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from segflow.sources._repeats import RULE, across_message, in_file_message

__all__ = ["RULE", "spark_repeated"]
from segflow.store import CANONICAL_TABLES

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from segflow.store._spark import SparkStore


def _same(cols: list[str], left: str, right: str):  # noqa: ANN202 (a Column)
    """Null-safe equality of the columns ``<left><col>`` and ``<right><col>`` (renamed
    copies: a self-join of one DataFrame's columns is ambiguous to Spark)."""
    from functools import reduce

    from pyspark.sql import functions as F

    return reduce(lambda a, b: a & b, [F.col(f"{left}{c}").eqNullSafe(F.col(f"{right}{c}"))
                                       for c in cols])


def _renamed(df: DataFrame, cols: list[str], prefix: str, *keep: str) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(*[F.col(k).alias(f"{prefix}{k}") for k in keep],
                     *[F.col(c).alias(f"{prefix}{c}") for c in cols])


def spark_repeated(store: SparkStore, run_id: str, source: str, label: str, load: str,
                   column: str, mapped: Collection[str], mine: DataFrame, stored: bool,
                   ) -> tuple[list[str], DataFrame | None]:
    """The warnings about the lines of the load ``load`` that repeat a block, and their
    ``ingest_flags`` rows (None when there is none). ``mine``: the rows the load writes
    (canonical columns and ``source_row``; from its persisted classified rows, so no read of
    the store); ``stored``: the source has rows in the warehouse (else no other file can
    hold the load's lines: no lookup). A load without equal lines costs one aggregation of
    its rows, and one lookup of the other files' lines in its time span."""
    from pyspark.sql import functions as F

    cols = [c for c in CANONICAL_TABLES["transactions"] if c in mapped and c != "transaction_id"]
    n, distinct, lo, hi = mine.agg(F.count(F.lit(1)), F.countDistinct(F.xxhash64(*cols)),
                                   F.min("ts"), F.max("ts")).first()
    said, parts = [], []
    if n > distinct:  # some lines are equal: they may repeat a block
        _in_file(mine, cols, label, said, parts)
    if stored and lo is not None:
        others = store.dataframe("transactions", pending=run_id).where(
            (F.col("source") == source) & (F.col("source_file") != label)
            & F.col("ts").between(lo, hi))
        if others.limit(1).count():
            _across(mine, others, cols, source, label, said, parts)
    if not parts:
        return said, None
    found = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    flags = found.groupBy("r").agg(F.min_by("v", "k").alias("value")).select(
        F.lit(source).alias("source"), F.lit(label).alias("source_file"),
        F.col("r").alias("row_number"), F.lit(RULE).alias("rule"),
        F.lit(column).alias("column_name"), "value", F.lit(load).alias("load_id"))
    return said, flags.localCheckpoint()  # written, then counted


def _in_file(mine: DataFrame, cols: list[str], label: str, said: list[str],
             parts: list[DataFrame]) -> None:
    """The lines of ``mine`` in a run of one distance to one of their previous three equal
    lines over two orders or more, each equal to the line it repeats: their warning added to
    ``said`` and their rows (``r``, ``v``, ``k``) to ``parts``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    s = mine.select(F.col("source_row").alias("r"), F.xxhash64(*cols).alias("h"),
                    F.xxhash64("customer_id", "ts").alias("o"))
    lines = s.join(s.groupBy("h").count().where("count > 1").select("h"), "h", "left_semi")
    w = Window.partitionBy("h").orderBy("r")
    lagged = lines.select("r", "o", *[(F.col("r") - F.lag("r", k).over(w)).alias(f"d{k}")
                                      for k in (1, 2, 3)])
    p = lagged.select("r", "o", F.explode(F.array("d1", "d2", "d3")).alias("d")).where("d IS NOT NULL")
    g = p.withColumn("run", F.col("r") - F.row_number().over(Window.partitionBy("d").orderBy("r")))
    runs = (g.groupBy("d", "run").agg(F.countDistinct("o").alias("n_o"), F.min("r").alias("r0"),
                                      F.max("r").alias("r1")).where("n_o > 1"))
    hit = (g.join(runs, ["d", "run"]).groupBy("r")
           .agg(F.min("d").alias("span"), F.min_by("r0", "d").alias("r0"),
                F.min_by("r1", "d").alias("r1"))
           .withColumn("prev", F.col("r") - F.col("span")))
    a, b = _renamed(mine, cols, "a_", "source_row"), _renamed(mine, cols, "b_", "source_row")
    exact = (hit.join(a, F.col("r") == F.col("a_source_row"))
             .join(b, F.col("prev") == F.col("b_source_row"))
             .where(_same(cols, "a_", "b_")).select("r", "prev", "r0", "r1", "span")
             .localCheckpoint())  # computed once (a chain of shuffles), read twice
    got = exact.agg(F.count(F.lit(1)), F.min("r0"), F.min_by("r1", "r0"),
                    F.min_by("span", "r0")).first()
    if got[0]:
        said.append(in_file_message(label, *got))
        parts.append(exact.select("r", F.concat(F.lit("repeats row "), F.col("prev")).alias("v"),
                                  F.lit(1).alias("k")))


def _across(mine: DataFrame, others: DataFrame, cols: list[str], source: str, label: str,
            said: list[str], parts: list[DataFrame]) -> None:
    """The lines of ``mine`` on the days all of whose lines ``others`` (the other files'
    lines in its time span) hold already, as multisets, when they are lines of two orders or
    more: their warning added to ``said`` and their rows (``r``, ``v``, ``k``) to ``parts``."""
    from pyspark.sql import functions as F

    new = _renamed(mine.withColumn("day", F.to_date("ts")), cols, "n_", "day").groupBy(
        "n_day", *[f"n_{c}" for c in cols]).agg(F.count(F.lit(1)).alias("n"))
    old = _renamed(others.withColumn("day", F.to_date("ts")), cols, "o_", "day",
                   "source_file").groupBy("o_day", *[f"o_{c}" for c in cols]).agg(
        F.count(F.lit(1)).alias("n_old"), F.min("o_source_file").alias("f"))
    cond = (F.col("n_day") == F.col("o_day")) & _same(cols, "n_", "o_")
    days = (new.join(old, cond, "left").groupBy(F.col("n_day").alias("day"))
            .agg(F.min(F.when(F.col("n_old") >= F.col("n"), 1).otherwise(0)).alias("ok"),
                 F.min("f").alias("f")).where("ok = 1").select("day", "f").localCheckpoint())
    rows = mine.join(days, F.to_date("ts") == days["day"])
    n_days, d0, d1, n, orders, other = rows.agg(
        F.countDistinct("day"), F.min("day"), F.max("day"), F.count(F.lit(1)),
        F.countDistinct(F.xxhash64("customer_id", "ts")), F.min("f")).first()
    if orders >= 2:
        said.append(across_message(label, source, n_days, d0, d1, n, other))
        parts.append(rows.select(F.col("source_row").alias("r"),
                                 F.concat(F.lit("stored from "), F.col("f")).alias("v"),
                                 F.lit(2).alias("k")))
