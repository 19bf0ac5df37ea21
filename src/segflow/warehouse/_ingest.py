"""``segflow ingest`` on Spark: sources read by Spark, checked by Spark tasks, written to the
warehouse as one run of the Spark store (docs/scale.md).

    source (Parquet file/folder at any URL Spark reads, or a catalog table)
      ─▶ rows numbered per Spark partition (``_row``: the row number in the file)
      ─▶ mapping and validation: a Spark task per partition runs segflow's own rules
         (:func:`segflow.sources._validate.validate`) on its rows, in an in-memory DuckDB
      ─▶ known customers: a Spark join with the warehouse's customers
      ─▶ rows shuffled by their key (rows that can be duplicates or conflicts of each other
         meet in one partition) ─▶ a task per partition: ``unknown_customer`` and the
         classification (:func:`segflow.sources._load.classify`, :func:`rollup_orders`)
      ─▶ the classified rows persisted on disk (in local mode the executor is the driver's
         JVM: its heap is not spent holding them) ─▶ the counts aggregated by Spark
         (:func:`segflow.sources._load.tally`); canonical rows, quarantine, duplicates,
         flags and the load row written by Spark; the quarantine's raw rows (the source row
         as JSON text) made only for the quarantined rows, from their source rows picked
         again by ``_row``

Memory: a validation task checks its split :data:`segflow.warehouse._ingest_tasks._CHUNK`
rows at a time; a large load is shuffled into one partition per :data:`_PER_TASK` rows (at
least the session's shuffle partitions), since a classification task holds its whole
partition. The tasks themselves: :mod:`segflow.warehouse._ingest_tasks`.

The rules exist once, as the SQL that the DuckDB ingest runs; here Spark distributes the
rows and each task applies that SQL to its share, so the Spark ingest has the DuckDB
ingest's rules and counts by construction. Every load of one ``segflow ingest`` is part of
one run: all of it becomes visible at once, or nothing; the run ends with the data audit
of the loaded data (:mod:`segflow.warehouse._audit`), stored as the DuckDB ingest stores it.

CSV files are parsed by the DuckDB ingest's own reader, a Spark task per file (module
:mod:`segflow.warehouse._text`); its rejects are quarantined as ``malformed_row``.

A load is compared with the rows of its source already in the warehouse (a new file of a
folder: rows already loaded are duplicates; a row with a stored key and other values: a late
correction, which replaces the stored row) by Spark joins (:mod:`segflow.warehouse._stored`).
A file read before under its name (a re-delivery, ``--force``) is compared with its own
earlier rows too, as on DuckDB (:mod:`segflow.sources._redeliver`): its rows no longer
delivered are counted as stale (or, with ``redelivery = "replace"``, its earlier rows are
taken back first), and its earlier quarantine records whose rows pass now are released.
A URL or catalog table is read whole at every ingest, as the DuckDB ingest reads a database
table: compared with the stored rows and its quarantine released, its earlier rows not
judged (no stale rows, no ``replace``). Rows are taken back through the store's
``retracted`` table (:mod:`segflow.store._spark_layout`), within the run.

A file of a local folder or glob source that is not a file of its format (binary data named
``.csv``, a Parquet file that cannot be read as Parquet or whose columns do not fit the
mapping) is refused alone before the run, as
the DuckDB ingest refuses it (its own check on the driver, :func:`segflow.sources._ingest.
preflight`): status ``rejected`` in the report and, once per file content, in ``loads``;
``binary_files = "fail"`` stops the ingest instead.

Not yet on Spark: JSON lines, Excel and database sources, and transaction lines without
any id (no ``transaction_id``, no ``duplicate_key``) read again under their name (the
DuckDB ingest's grown-file check): such a load stops with a one-line error and the run
leaves no trace.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from segflow.engine._spark import local_url, spark_error_line
from segflow.errors import BinaryFileError, InputError, StoreError
from segflow.sources._discover import discover, file_hash, relative, several_files, source_format
from segflow.sources._ingest import (
    _ORDER,
    IngestReport,
    ProgressFn,
    _now,
    no_file_fits,
    preflight,
    rejected,
)
from segflow.sources._load import LoadCounts, empty_message, finish_time, has_header, note_empty
from segflow.sources._readers import Staged
from segflow.sources._redeliver import note_stale
from segflow.sources._rules import duplicate_columns, row_key
from segflow.sources._validate import resolve, unknown_customer_rule
from segflow.store import CANONICAL_TABLES
from segflow.warehouse._audit import store_warehouse_audit
from segflow.warehouse._ingest_tasks import _ROW_INDEX, _STG, _duckdb_types, _Job, _plain
from segflow.warehouse._ingest_write import _write
from segflow.warehouse._nanos import NANOS_AS_LONG, micros, nanosecond_columns
from segflow.warehouse._stored import (
    ON_DUCKDB,
    forget_file,
    mark_stored,
    refuse_lines,
    stale_count,
)
from segflow.warehouse._text import TextRead, read_text

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from segflow.config import Settings, SourceSettings
    from segflow.store._spark import SparkStore

#: Rows a classification task gets (about): the shuffle by key has at least the session's
#: shuffle partitions, more for large loads (a task holds its whole partition).
_PER_TASK = 500_000


@dataclass
class _Input:
    """One load: a file (or folder, or catalog table) of one source."""

    label: str  # source_file of the load (relative path, URL or table name)
    url: str  # what Spark reads
    fmt: str  # parquet | table
    path: Path | None = None  # a local file: its hash tells an unchanged file
    nanos: dict[str, bool] = field(default_factory=dict)  # see segflow.warehouse._nanos


def _inputs(source: SourceSettings, project_dir: Path) -> list[_Input]:
    fmt = source.format
    if fmt in ("duckdb", "postgres", "jsonl", "xlsx"):
        raise InputError(f"source {source.name!r}: format {fmt!r} is not read by the Spark ingest "
                         "yet (Parquet and CSV files and folders, and catalog tables are: "
                         "docs/scale.md)")
    path = source.path or ""
    if path.startswith("table:"):  # a table of the session catalog
        return [_Input(path, path.removeprefix("table:"), "table")]
    if "://" in path:  # any URL Spark reads: one load (a folder of part files included)
        suffix = Path(path.split("://", 1)[1]).suffixes
        csv = fmt == "csv" or (not fmt and bool({".csv", ".tsv", ".txt"} & set(suffix)))
        return [_Input(path, path, "csv" if csv else "parquet")]
    out = []
    for file in discover(source, project_dir)[0]:
        fmt = source_format(source, file)
        if fmt not in ("parquet", "csv"):
            raise InputError(f"source {source.name!r}: only Parquet and CSV files are read by "
                             "the Spark ingest yet", file=relative(file, project_dir))
        out.append(_Input(relative(file, project_dir), local_url(file), fmt, file))
    return out


def _read(store: SparkStore, inp: _Input) -> DataFrame:
    """The rows of ``inp``; a single local file's carry their row index in the file
    (``_ROW_INDEX``: Spark's ``_metadata.row_index``), whatever the splits Spark reads. Its
    nanosecond timestamp columns (``inp.nanos``, read by Spark as their integer while
    :data:`NANOS_AS_LONG` is set) become timestamps of microseconds, truncated as DuckDB
    casts its ``TIMESTAMP_NS``: naive ones ``TIMESTAMP_NTZ``, UTC ones ``TIMESTAMP``."""
    try:
        if inp.fmt == "table":
            return store.session.table(inp.url)
        df = store.session.read.parquet(inp.url)
        if inp.path is not None:
            df = df.select("*", df["_metadata.row_index"].alias(_ROW_INDEX))
        if inp.nanos:
            df = df.select(*[micros(c, inp.nanos[c]) if c in inp.nanos else df[c]
                             for c in df.columns])
        return df
    except Exception as exc:  # JVM errors: missing path, unknown scheme, not Parquet
        hint = ""
        if "TIMESTAMP(NANOS" in str(exc):
            hint = ("; the Spark ingest reads nanosecond timestamps (pandas' default) only in "
                    "top-level columns of local files: write microseconds (pyarrow: "
                    "coerce_timestamps='us') or " + ON_DUCKDB)
        raise InputError(f"Spark cannot read it: {spark_error_line(exc)}{hint}",
                         file=inp.label) from exc


def ingest_on_warehouse(
    store: SparkStore,
    settings: Settings,
    project_dir: Path,
    *,
    progress: ProgressFn | None = None,
    now: dt.datetime | None = None,
    force: bool = False,
) -> IngestReport:
    """Read every ``[[sources]]`` entry into the warehouse's canonical tables, on Spark, as
    one run of ``store`` (see the module notes); the same rules, statuses and counts as
    :func:`segflow.sources.ingest` on DuckDB.

    Sources: a ``path`` that is a local Parquet file, folder or glob (one load per file, as
    on DuckDB), a URL Spark reads (``hdfs://``, ``s3a://``, ``file://``: one load), or
    ``table:<database>.<table>`` for a table of the session catalog (one load). A load is
    compared with the rows its source has in the warehouse (earlier ingests, and earlier
    loads of this one: :mod:`segflow.warehouse._stored`): a file added to a folder loads its
    rows, those already stored count as duplicates, and those with a stored key and other
    values replace the stored row. A file changed since its load (or read again with
    ``force``) is compared with its own earlier rows as on DuckDB: stale rows counted (or
    its earlier rows replaced: ``redelivery = "replace"``), quarantine released; a URL or
    table, read whole at every ingest, as the DuckDB ingest reads a database table.

    At the end, the data audit (:func:`segflow.quality.audit`, run by Spark) is stored in
    ``summary_audit`` as part of the same run, unless the stored one is current (no file
    loaded): :mod:`segflow.warehouse._audit`.

    Raises
    ------
    InputError
        A source Spark cannot read, a format the Spark ingest does not read yet, a mapped
        column missing, or transaction lines without any id read again under their name.
        Nothing of the run is then visible.
    """
    project_dir = Path(project_dir)
    now = now or _now()
    sources = sorted(settings.sources, key=lambda s: _ORDER.index(s.table))
    plan = [(src, inp) for src in sources for inp in _inputs(src, project_dir)]
    done: set[tuple[str, str, str | None]] = set()  # (source, hash, file or None: any file)
    again: dict[tuple[str, str], bool] = {}  # (source, file) loaded before (ok): with rows
    prior: dict[str, set[str]] = {}  # source -> the tables holding rows of it (see _note)
    gone: set[tuple[str, str, str]] = set()  # (source, file, hash) refused whole before
    if "loads" in store.tables():
        for r in store.dataframe("loads").where("status IN ('ok', 'rejected')").select(
                "source", "file_hash", "source_file", "rows_read", "target_table",
                "rows_accepted", "rows_quarantined", "status").collect():
            if r.status == "rejected":
                gone.add((r.source, r.source_file, r.file_hash))
                continue
            if r.file_hash is not None:
                done.add((r.source, r.file_hash, None if r.rows_read else r.source_file))
            again[r.source, r.source_file] = again.get((r.source, r.source_file), False) \
                or bool(r.rows_read)
            _note(prior, r.source, r.target_table, r.rows_accepted, r.rows_quarantined)
    refused = _refused(plan, project_dir, {source for source, _ in again})
    plan = [(src, inp) for src, inp in plan if (src.name, inp.label) not in refused]

    def loaded(src: SourceSettings, inp: _Input, digest: str | None) -> bool:
        """The DuckDB ingest's rule (:data:`segflow.sources._ingest.UNCHANGED_SQL`)."""
        return digest is not None and bool(
            {(src.name, digest, None), (src.name, digest, inp.label)} & done)

    digests = [file_hash(inp.path) if inp.path is not None else None for _, inp in plan]
    todo = [digest is None or force or not loaded(src, inp, digest)
            for (src, inp), digest in zip(plan, digests, strict=True)]
    loads: list[LoadCounts] = []
    with store.run("ingest", {"project": str(project_dir)}) as run_id:
        for (src, inp), exc in refused.values():  # first, as on DuckDB
            loads.append(rejected(src, inp.label, exc))
            digest = file_hash(inp.path) if inp.path is not None else None
            if (src.name, inp.label, digest) not in gone:  # once per file content
                _record(store, run_id, src, inp, loads[-1], digest=digest, started=now,
                        status="rejected")
        for i, ((src, inp), digest, load) in enumerate(zip(plan, digests, todo, strict=True)):
            if not load:
                loads.append(LoadCounts("", src.name, inp.label, src.table, "unchanged"))
            else:
                loads.append(_load(store, run_id, src, inp, now=now, digest=digest,
                                   prior=prior.get(src.name, set()),
                                   again=again.get((src.name, inp.label))))
                _note(prior, src.name, src.table, loads[-1].rows_accepted,
                      loads[-1].rows_quarantined)
            if progress:
                progress(inp.label, i + 1, len(plan))
        # the audit of the data as loaded, in the same run (as the DuckDB ingest stores it)
        store_warehouse_audit(store, run_id)
    return IngestReport(loads)


def _refused(plan: list[tuple[SourceSettings, _Input]], project_dir: Path,
             loaded: set[str]) -> dict[tuple[str, str], tuple[tuple[SourceSettings, _Input], BinaryFileError]]:
    """The local files of folder and glob sources that are no files of their format, by
    (source, file): checked on the driver as the DuckDB ingest checks them (a DuckDB staging
    of their first rows, :func:`segflow.sources._ingest.preflight`). Other errors are left
    to the load, which reports them as Spark reads the file. ``loaded``: the sources with a
    load in the warehouse (:func:`segflow.sources._ingest.no_file_fits`).

    Raises
    ------
    BinaryFileError
        Such a file of a source with ``binary_files = "fail"``.
    """
    out = {}
    for src, inp in plan:
        if inp.path is None or not several_files(src, project_dir):
            continue
        try:
            preflight(src, inp.path, project_dir)
        except BinaryFileError as exc:
            if src.binary_files == "fail":
                raise
            out[src.name, inp.label] = ((src, inp), exc)
        except InputError:
            continue
    no_file_fits([src.name for src, inp in plan if inp.path is not None],
                 [(src.name, exc) for (src, _), exc in out.values()], loaded)
    return out


def _note(prior: dict[str, set[str]], source: str, table: str, accepted: int | None,
          quarantined: int | None) -> None:
    """Note in ``prior`` the tables a load (ok) of ``source`` wrote rows to: the load log
    tells which loads need comparing with stored rows without a Spark job (a table no load
    of the source wrote to has none of its rows; one it wrote to may have lost them all to
    retractions, which only costs the comparison)."""
    have = prior.setdefault(source, set())
    if accepted:
        have.add(table)
    if quarantined:
        have.add("quarantine")


def _load(store: SparkStore, run_id: str, source: SourceSettings, inp: _Input, *,
          now: dt.datetime, digest: str | None, prior: set[str],
          again: bool | None) -> LoadCounts:
    """One load: its rows checked by Spark tasks, compared with the rows of its source in
    the warehouse (``prior``: the tables holding some, :func:`_note`), and written as rows
    of ``run_id``. A file read ``again`` under its name (a re-delivery, ``--force``; True:
    an earlier load read rows from it, False: none, None: not read before) is
    compared with its own earlier rows too, as on DuckDB (:mod:`segflow.sources._redeliver`):
    with ``redelivery = "replace"`` they are taken back first, else the rows it no longer
    has are counted as stale."""
    started = _now()
    counts = LoadCounts(uuid.uuid4().hex[:12], source.name, inp.label, source.table)
    if inp.fmt == "parquet" and inp.path is not None and inp.path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", file=inp.label)  # as on DuckDB
    # a file delivered again (a URL or a table is read whole at every ingest, as the DuckDB
    # ingest reads a database table: its earlier rows are not judged by a new read)
    redelivered = again is not None and inp.path is not None
    replace = redelivered and source.redelivery == "replace"
    if replace:  # before anything reads the warehouse's rows for this load
        forget_file(store, run_id, source, counts)
    stale = redelivered and not replace
    text = read_text(store.session, source, inp.url, inp.label, inp.path is not None) \
        if inp.fmt == "csv" else None
    if inp.fmt == "parquet" and inp.path is not None:
        inp.nanos = nanosecond_columns(inp.path)
    conf = store.session.conf
    before = conf.get(NANOS_AS_LONG, None)
    if inp.nanos:
        conf.set(NANOS_AS_LONG, "true")
    try:
        if text is not None:
            for name, blank in text.empty:  # the files of the load without data rows
                counts.warn_file(empty_message(name, blank=blank, header=has_header(source)))
        if text is not None and text.rows is None:  # no file with a byte: no header
            counts.status = "empty"
            if stale:
                _stale(store, run_id, source, counts, None, [], set())
            _record(store, run_id, source, inp, counts, digest=digest, started=started)
            return counts
        return _load_rows(store, run_id, source, inp, text, counts, now=now, digest=digest,
                          started=started, prior=prior, again=again, replace=replace,
                          stale=stale)
    finally:
        if text is not None:
            text.release()
        if inp.nanos and before is not None:
            conf.set(NANOS_AS_LONG, before)
        elif inp.nanos:
            conf.unset(NANOS_AS_LONG)


def _load_rows(store: SparkStore, run_id: str, source: SourceSettings, inp: _Input,
               text: TextRead | None, counts: LoadCounts, *, now: dt.datetime,
               digest: str | None, started: dt.datetime, prior: set[str], again: bool | None,
               replace: bool, stale: bool) -> LoadCounts:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    raw = _read(store, inp) if text is None else text.rows
    columns = raw.drop(_ROW_INDEX) if _ROW_INDEX in raw.columns else raw
    if text is not None:
        columns = raw.drop("_row")
    types = _duckdb_types(to_arrow_schema(columns.schema))
    if "_row" in types:
        raise InputError("a column named _row is reserved", file=inp.label)
    staged = Staged(_STG, types, inp.label)
    job = _Job(source, inp.label, types, resolve(source, staged), now)  # mapping errors: now
    if again and not replace:  # lines of it are stored: the DuckDB ingest's _grown_lines
        refuse_lines(source, job.present, set(job.specs), inp.label)
    rollup = bool(source.rollup and source.table == "transactions")
    # output schemas: the same code on no rows, on the driver
    empty = to_arrow_schema(columns.schema).empty_table().append_column(
        "_row", pa.array([], pa.int64()))
    job.val_schema = _plain(job.validated(empty).schema)
    job.cls_schema = _plain(job.classified(job.val_schema_known.empty_table()).schema)
    if rollup:
        job.ord_schema = _plain(job.rolled_up(job.cls_schema.empty_table()).schema)
    # row numbers: the row index in a local file, else the rows before each partition (a
    # count per partition, then the tasks) in Spark's read order
    job.row_index, total = _ROW_INDEX in raw.columns, None
    if text is not None:
        job.numbered, total = True, text.records
    elif not job.row_index:
        total = 0
        for r in sorted(raw.groupBy(F.spark_partition_id().alias("p")).count().collect()):
            job.offsets[r.p], total = total, total + r["count"]
    else:
        total = raw.count()  # a Parquet file's count: its footers
    if total == 0:  # a header (schema) without rows: it matched the mapping above
        if text is None:
            note_empty(counts, blank=False)
        counts.status = "empty"
        if stale:
            _stale(store, run_id, source, counts, None, job.present, set(job.specs))
        _record(store, run_id, source, inp, counts, digest=digest, started=started)
        return counts
    val = raw.mapInArrow(job.validate_task, from_arrow_schema(job.val_schema, prefer_timestamp_ntz=True))
    customers = store.dataframe("customers", pending=run_id)
    job.known = bool(unknown_customer_rule(source, job.specs, "_") and customers.limit(1).count())
    if job.known:
        ids = customers.where("customer_id IS NOT NULL").select(
            F.col("customer_id").alias("_kid")).distinct()
        val = (val.join(ids, val.v_customer_id == ids._kid, "left")
               .withColumn("_known", F.col("_kid").isNotNull()).drop("_kid"))
    else:
        val = val.withColumn("_known", F.lit(False))
    job.stored, job.quarantined = source.table in prior, "quarantine" in prior
    val = mark_stored(store, run_id, source, val, job.present, set(job.specs), job.stored)
    parts = -(-total // _PER_TASK)  # more than the session's shuffle partitions: a large load
    val = _by_key(val, source, job,
                  parts if parts > int(store.session.conf.get("spark.sql.shuffle.partitions")) else None)
    cls = val.mapInArrow(job.classify_task, from_arrow_schema(job.cls_schema, prefer_timestamp_ntz=True))
    # on disk, not in memory: in local mode the executor is the driver's JVM, whose heap
    # the load's later writes need (docs/scale.md)
    cls = kept = cls.persist(StorageLevel.DISK_ONLY)
    try:
        if job.stored:  # the rows as compared now, whatever the load writes next (below)
            cls = cls.checkpoint(eager=True)
        if stale:  # before the load's writes: the stored rows as they were
            _stale(store, run_id, source, counts, cls, job.present, set(job.specs))
        _write(store, run_id, source, job, cls, counts, now=now, rollup=rollup,
               numbered=_numbered(raw, job, text), rejects=text.rejects if text is not None else None,
               again=again is not None, replace=replace)
    finally:
        kept.unpersist()
    if not counts.reconciles or total not in (None, counts.rows_read):  # a bug guard
        raise StoreError(f"reconciliation failed for {inp.label}: {counts} ({total} rows read)")
    _record(store, run_id, source, inp, counts, digest=digest, started=started)
    return counts


def _stale(store: SparkStore, run_id: str, source: SourceSettings, counts: LoadCounts,
           cls: DataFrame | None, present: list[str], mapped: set[str]) -> None:
    """``rows_stale`` of a file delivered again (``redelivery = "keep"``): its earlier
    rows that the new delivery (classified rows ``cls``, None: no rows) does not restate,
    with the DuckDB ingest's warning (:func:`segflow.sources._redeliver.note_stale`)."""
    counts.rows_stale = stale_count(store, run_id, source, counts.source_file, cls, present,
                                    mapped)
    note_stale(counts, source, mapped, present or list(CANONICAL_TABLES[source.table]),
               empty=cls is None)


def _record(store: SparkStore, run_id: str, source: SourceSettings, inp: _Input,
            counts: LoadCounts, *, digest: str | None, started: dt.datetime,
            status: str = "ok") -> None:
    """The load's row in ``loads`` (as :func:`segflow.sources._load.record_load` writes it),
    written after the load's rows: finished now (:func:`finish_time`), not at the ingest's
    ``now`` (when the ingest began); ``status`` ``rejected`` for a file refused whole."""
    store.write("loads", pa.table({
        "load_id": [counts.load_id], "source": [source.name], "source_file": [inp.label],
        "file_hash": pa.array([digest], pa.string()), "target_table": [source.table],
        "rows_read": [counts.rows_read], "rows_accepted": [counts.rows_accepted],
        "rows_quarantined": [counts.rows_quarantined], "rows_duplicate": [counts.rows_duplicate],
        "started_at": [started], "finished_at": [finish_time(started)], "status": [status],
        "rows_stale": [counts.rows_stale]}), run_id, count=False)


def _numbered(raw: DataFrame, job: _Job, text: TextRead | None) -> DataFrame:
    """The load's source rows with their ``_row``, numbered as the validation numbers them
    (:meth:`_Job.number`), for the quarantine's raw rows."""
    from pyspark.sql import functions as F

    if text is not None:
        return text.rows
    if job.row_index:
        return raw.withColumn("_row", (F.col(_ROW_INDEX) + 1).cast("long")).drop(_ROW_INDEX)
    # Spark's monotonically increasing id: the partition << 33, plus the row's position in it
    part = F.spark_partition_id().cast("long")
    before = F.create_map(*[F.lit(x) for kv in sorted(job.offsets.items()) for x in kv]) \
        if job.offsets else None
    row = F.monotonically_increasing_id() - part * (1 << 33) + 1
    if before is not None:
        row = row + F.coalesce(before[F.spark_partition_id()], F.lit(0))
    return raw.withColumn("_row", row.cast("long"))


def _by_key(val: DataFrame, source: SourceSettings, job: _Job, parts: int | None) -> DataFrame:
    """The rows shuffled (into ``parts`` partitions, or the session's shuffle partitions) so
    that every group the classification compares (equal duplicate columns, equal key, lines
    of one order) lies in one partition; one partition when no column is shared by all
    those groups."""
    mapped = set(job.specs)
    key = row_key(source, mapped)
    rollup = source.rollup and source.table == "transactions"
    dup = duplicate_columns(source, job.present, mapped)
    groups: list[set[str]] = []
    if dup is not None:  # order lines without duplicate_key compare their raw line
        groups.append({"transaction_id"} if rollup and not source.duplicate_key else set(dup))
    if rollup:
        groups.append({"transaction_id"})
    elif key:
        groups.append({key})
    if not groups:
        return val
    shared = set.intersection(*groups)
    if not shared:
        return val.repartition(1)
    cols = [f"v_{c}" for c in sorted(shared)]
    return val.repartition(parts, *cols) if parts else val.repartition(*cols)
