"""Writing one load of the Spark ingest (:mod:`segflow.warehouse._ingest`): its classified
rows become canonical rows, quarantine (with the raw rows of the quarantined rows only),
duplicates and flags of the run, and its counts come from one Spark aggregation of them.
A quarantined row whose raw row the source has quarantined already is a duplicate
(``seen``: :func:`segflow.warehouse._stored.seen_quarantined`), as on DuckDB. What the
DuckDB ingest deletes (the stored rows a late correction replaces, the quarantine records of
a file read again whose rows pass now) is taken back through the store's ``retracted``
table, written in the load's run before the load's own rows.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from segflow.sources._load import _DUP_KIND, LoadCounts, note_flags, tally
from segflow.sources._rules import duplicate_columns, flags, row_key
from segflow.store import CANONICAL_TABLES
from segflow.warehouse._stored import (
    mark_orders,
    note_overlap,
    order_lines,
    retract_replaced,
    seen_quarantined,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from segflow.config import SourceSettings
    from segflow.store._spark import SparkStore
    from segflow.warehouse._ingest_tasks import _Job

_ACCEPTED = ("accepted", "replace")
#: Quarantined rows up to which their source rows are picked by a broadcast join.
_BROADCAST = 2_000_000
#: The schema of :meth:`segflow.warehouse._ingest_tasks._Job.raw_task`'s rows.
RAW = pa.schema([pa.field("_row", pa.int64()), pa.field("_raw_row", pa.string())])


def _write(store: SparkStore, run_id: str, source: SourceSettings, job: _Job, cls: DataFrame,
           counts: LoadCounts, *, now: dt.datetime, rollup: bool, numbered: DataFrame,
           rejects: DataFrame | None = None, again: bool = False,
           replace: bool = False) -> None:
    """The load's canonical rows, quarantine (the raw rows picked from ``numbered``, the
    source rows with their ``_row``; with the ``rejects`` of a CSV reader:
    ``malformed_row``), duplicates and flags, and its counts.

    Stored rows of the source that rows of the load correct (status ``replace``: same key,
    other values) are taken back first (:func:`segflow.warehouse._stored.retract_replaced`).
    A file read ``again`` under its name releases the quarantine records of its earlier
    loads whose rows pass now (:func:`_release`) and logs a duplicate row once
    (:func:`_logged_once`); after its earlier deliveries were forgotten (``replace``:
    ``redelivery = "replace"``), the rows restating other files' rows are warned about.
    """
    from pyspark.sql import functions as F

    src, label, load = F.lit(source.name), F.lit(job.label), F.lit(counts.load_id)
    canon = list(CANONICAL_TABLES[source.table])
    if rollup:
        orders = cls.mapInArrow(job.rollup_task, _spark_schema(job.ord_schema))
        if job.stored:  # orders compared with the stored ones (rollup_orders' against_store)
            # as they are now: the orders written below must not become stored ones to them
            orders = mark_orders(store, run_id, source, orders).checkpoint(eager=True)
            cls = order_lines(cls, orders)
        rows = orders.where(F.col("_ostatus").isin(*_ACCEPTED)).select(
            *canon, src.alias("source"), label.alias("source_file"), "source_row",
            load.alias("load_id"))
    else:
        rows = cls.where(F.col("_status").isin(*_ACCEPTED)).select(
            *[F.col(f"v_{c}").alias(c) for c in canon], src.alias("source"),
            label.alias("source_file"), F.col("_row").alias("source_row"), load.alias("load_id"))
    flag_list = flags(source, job.specs)
    by, rules, flagged, flagged_rows = _counts(cls, flag_list)
    if replace:
        note_overlap(store, run_id, source, by, counts)
    if by.get("replace"):  # late corrections: the rows they correct go first
        key = "transaction_id" if rollup else row_key(source, set(job.specs))
        assert key is not None  # a row without a key is never 'replace'
        keys = (orders.where(F.col("_ostatus") == "replace").select(
            F.col("transaction_id").alias("_k")) if rollup else
            cls.where(F.col("_status") == "replace").select(F.col(f"v_{key}").alias("_k")))
        retract_replaced(store, run_id, source, key, keys)
    # the counts come from the one aggregation of the classified rows (above): uncounted
    store.write(source.table, rows, run_id, count=False)
    quarantined = cls.where("_status = 'quarantined'")
    if by.get("quarantined"):  # the raw rows of the quarantined rows only, from the source
        few = by["quarantined"] <= _BROADCAST
        keys = quarantined.select("_row")
        picked = numbered.join(F.broadcast(keys) if few else keys, "_row", "left_semi")
        raws = picked.mapInArrow(job.raw_task, _spark_schema(RAW))
        quarantined = quarantined.join(F.broadcast(raws) if few else raws, "_row", "left")
        seen = seen_quarantined(store, run_id, source, quarantined) if job.quarantined else []
        if seen:  # quarantined before from the source: duplicates (status 'seen')
            hit = store.session.createDataFrame([(row, True) for row, _ in seen],
                                                "_row long, _seen boolean")
            cls = cls.join(F.broadcast(hit), "_row", "left").withColumn(
                "_status", F.when(F.col("_seen"), F.lit("seen")).otherwise(F.col("_status"))
            ).drop("_seen")
            quarantined = quarantined.join(F.broadcast(hit), "_row", "left_anti")
            _unquarantine(by, rules, [rule for _, rule in seen])
    else:
        quarantined = quarantined.withColumn("_raw_row", F.lit(None).cast("string"))
    if again and job.quarantined:  # before this load's own records are written
        _release(store, run_id, source, job, cls, counts, numbered)
    quarantined = quarantined.select(
        src.alias("source"), label.alias("source_file"), F.col("_row").alias("row_number"),
        F.col("_raw_row").alias("raw_row"), F.col("_rule").alias("rule"),
        F.col("_reason").alias("reason"), F.col("_column").alias("column_name"),
        load.alias("load_id"), F.lit(now).alias("ingested_at"))
    n_rejects, rejects_seen = 0, []
    if rejects is not None:
        n_rejects = rejects.count()
        if n_rejects and job.quarantined:  # malformed rows quarantined before: duplicates
            rejects_seen = [row for row, _ in seen_quarantined(store, run_id, source, rejects.select(
                "_row", F.col("raw_row").alias("_raw_row"),
                F.lit("malformed_row").alias("_rule")))]
            if rejects_seen:
                rejects = rejects.where(~F.col("_row").isin(rejects_seen))
        if n_rejects > len(rejects_seen):  # the rows the reader could not split, as on DuckDB
            quarantined = quarantined.unionByName(rejects.select(
                src.alias("source"), label.alias("source_file"),
                F.col("_row").alias("row_number"), "raw_row", F.lit("malformed_row").alias("rule"),
                "reason", "column_name", load.alias("load_id"), F.lit(now).alias("ingested_at")))
    store.write("quarantine", quarantined, run_id, count=False)
    kind = F.create_map(*[F.lit(x) for kv in _DUP_KIND.items() for x in kv])
    dups = cls.where(F.col("_status").isin(*_DUP_KIND)).select(
        src.alias("source"), label.alias("source_file"), F.col("_row").alias("row_number"),
        kind[F.col("_status")].alias("kind"),
        F.when(F.col("_status") == "duplicate", F.col("_dup_of")).alias("duplicate_of_row"),
        load.alias("load_id"))
    if rejects_seen:
        dups = dups.unionByName(store.session.createDataFrame(
            [(source.name, job.label, row, _DUP_KIND["seen"], None, counts.load_id)
             for row in rejects_seen], dups.schema))
    if again:
        dups = _logged_once(store, run_id, source, job.label, counts.load_id, dups)
    store.write("ingest_duplicates", dups, run_id, count=False)
    if flag_list:
        parts = [cls.where(F.col(f"_f{i}")).select(
            src.alias("source"), label.alias("source_file"), F.col("_row").alias("row_number"),
            F.lit(rule).alias("rule"), F.lit(column).alias("column_name"),
            F.col(f"_fv{i}").alias("value"), load.alias("load_id"))
            for i, (rule, _cond, column, _value) in enumerate(flag_list)]
        found = parts[0]
        for part in parts[1:]:
            found = found.unionByName(part)
        store.write("ingest_flags", found, run_id, count=False)
    if (source.table == "transactions" and not rollup and row_key(source, set(job.specs)) is None
            and duplicate_columns(source, job.present, set(job.specs)) is None):
        flagged, flagged_rows = _repeated(store, run_id, source, job, counts, rows, cls,
                                          flag_list, flagged, flagged_rows)
    if flagged:
        note_flags(counts, flagged, flagged_rows)
    n_seen = len(rejects_seen)
    tally(counts, by, rules, {k: n for k, n in ((False, n_rejects - n_seen), (True, n_seen)) if n})


def _repeated(store: SparkStore, run_id: str, source: SourceSettings, job: _Job,
              counts: LoadCounts, rows: DataFrame, cls: DataFrame,
              flag_list: list[tuple[str, str, str, str]],
              flagged: list[tuple[str, int, int, str]], flagged_rows: int,
              ) -> tuple[list[tuple[str, int, int, str]], int]:
    """Transaction lines without ids repeating a block (:mod:`segflow.warehouse._repeats`,
    as on DuckDB) among the load's written ``rows``: their warnings added to ``counts``,
    their flags written; returns the load's flags per rule and its flagged rows with them
    (``cls``' rows with a flag of ``flag_list`` other than ``anonymous``, or repeated)."""
    from functools import reduce

    from pyspark.sql import functions as F

    from segflow.warehouse._repeats import RULE, spark_repeated

    column = source.columns.get("ts", "ts")
    said, found = spark_repeated(store, run_id, source.name, job.label, counts.load_id, column,
                                 set(job.specs), rows, job.stored)
    counts.warnings += said
    if found is None:
        return flagged, flagged_rows
    store.write("ingest_flags", found, run_id, count=False)
    n, first = found.agg(F.count(F.lit(1)), F.min("row_number")).first()
    noted = [F.col(f"_f{i}") for i, (rule, *_rest) in enumerate(flag_list) if rule != "anonymous"]
    rows_ = found.select(F.col("row_number").alias("_row"))
    if noted:
        rows_ = rows_.unionByName(cls.where(reduce(lambda a, b: a | b, noted)).select("_row"))
    return sorted([*flagged, (RULE, n, first, column)]), rows_.distinct().count()


def _release(store: SparkStore, run_id: str, source: SourceSettings, job: _Job,
             cls: DataFrame, counts: LoadCounts, numbered: DataFrame) -> None:
    """Rows of the file quarantined by an earlier load that pass now (accepted or
    replacing): their quarantine records (same row number, same raw row) are taken back
    and counted in ``rows_released``, with the warning of the DuckDB ingest's
    ``_release`` (:mod:`segflow.sources._load`). Two Spark jobs (the records are counted
    as they are written)."""
    from pyspark.sql import functions as F

    q = store.dataframe("quarantine", pending=run_id)
    mine = q.where((q.source == source.name) & (q.source_file == job.label)
                   & (q.load_id != counts.load_id))
    numbers = mine.select(F.col("row_number").alias("_row")).distinct()
    passed = cls.where(F.col("_status").isin(*_ACCEPTED)).select("_row").join(
        numbers, "_row", "left_semi")
    raws = numbered.join(passed, "_row", "left_semi").mapInArrow(job.raw_task,
                                                                 _spark_schema(RAW))
    gone = mine.join(raws, (mine.row_number == raws["_row"]) & (mine.raw_row == raws["_raw_row"]),
                     "left_semi")
    counts.rows_released = store.write("retracted", gone.select(
        F.lit("quarantine").alias("table_name"), F.col("run_id").alias("run_of"), "load_id",
        "row_number"), run_id)
    if counts.rows_released:
        counts.warnings.append(
            f"file {counts.source_file}: {counts.rows_released} rows quarantined by an earlier "
            "load pass the rules now and were loaded")


def _logged_once(store: SparkStore, run_id: str, source: SourceSettings, label: str,
                 load_id: str, dups: DataFrame) -> DataFrame:
    """The duplicate rows ``dups`` of a file read again, less those the DuckDB ingest does
    not log again (:func:`segflow.sources._load.write`): a row logged already with its
    kind, and the very row (same file and row number) stored (``already_loaded``) or
    quarantined by another load (``already_quarantined``). Read after the load's own
    canonical rows and quarantine records are written, as there."""
    from pyspark.sql import functions as F

    def mine(name: str) -> DataFrame:
        df = store.dataframe(name, pending=run_id)
        return df.where((df.source == source.name) & (df.source_file == label))

    q = mine("quarantine")
    known = mine("ingest_duplicates").select("row_number", "kind").unionByName(
        mine(source.table).select(F.col("source_row").alias("row_number"),
                                  F.lit("already_loaded").alias("kind"))).unionByName(
        q.where(q.load_id != load_id).select("row_number",
                                             F.lit("already_quarantined").alias("kind")))
    return dups.join(known, ["row_number", "kind"], "left_anti")


def _unquarantine(by: dict[str, int], rules: dict[str, int], seen: list[str]) -> None:
    """Move the quarantined rows found ``seen`` (their rules) to status ``seen`` in the
    counts of :func:`_counts` (rules: largest first again)."""
    by["quarantined"] -= len(seen)
    by["seen"] = by.get("seen", 0) + len(seen)
    for rule in seen:
        rules[rule] -= 1
    kept = sorted(((r, n) for r, n in rules.items() if n), key=lambda kv: -kv[1])
    rules.clear()
    rules.update(kept)


def _counts(cls: DataFrame, flag_list: list[tuple[str, str, str, str]],
            ) -> tuple[dict[str, int], dict[str, int], list[tuple[str, int, int, str]], int]:
    """The load's counts from one Spark aggregation of its classified rows: rows per
    ``_status``, quarantined rows per rule (largest first), per flag rule (sorted) its
    values, first row and that row's column, and the rows with a flag other than
    ``anonymous`` (as :func:`segflow.sources._load.note_flags` takes them, the DuckDB
    ingest's ``GROUP BY rule`` of its flags)."""
    from pyspark.sql import functions as F

    aggs = [F.count(F.lit(1)).alias("n")]
    for i in range(len(flag_list)):
        aggs += [F.sum(F.col(f"_f{i}").cast("long")).alias(f"n{i}"),
                 F.min(F.when(F.col(f"_f{i}"), F.col("_row"))).alias(f"r{i}")]
    noted = [F.coalesce(F.col(f"_f{i}"), F.lit(False))
             for i, (rule, *_rest) in enumerate(flag_list) if rule != "anonymous"]
    if noted:
        any_flag = noted[0]
        for one in noted[1:]:
            any_flag = any_flag | one
        aggs.append(F.sum(any_flag.cast("long")).alias("fr"))
    groups = cls.groupBy("_status", "_rule").agg(*aggs).collect()
    by: dict[str, int] = {}
    rules: dict[str, int] = {}
    for g in groups:
        by[g["_status"]] = by.get(g["_status"], 0) + g["n"]
        if g["_status"] == "quarantined":
            rules[g["_rule"]] = rules.get(g["_rule"], 0) + g["n"]
    per_rule: dict[str, list] = {}  # rule -> [rows, first row, its column]
    for i, (rule, _cond, column, _value) in enumerate(flag_list):
        n = sum(g[f"n{i}"] or 0 for g in groups)
        if not n:
            continue
        first = min(g[f"r{i}"] for g in groups if g[f"r{i}"] is not None)
        have = per_rule.setdefault(rule, [0, first, column])
        have[0] += n
        if first < have[1]:
            have[1:] = [first, column]
    rules = dict(sorted(rules.items(), key=lambda kv: -kv[1]))
    flagged_rows = sum(g["fr"] or 0 for g in groups) if noted else 0
    return by, rules, [(rule, *per_rule[rule]) for rule in sorted(per_rule)], flagged_rows


def _spark_schema(schema: pa.Schema | None) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    assert schema is not None
    return from_arrow_schema(schema, prefer_timestamp_ntz=True)
