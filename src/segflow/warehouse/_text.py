"""CSV sources of the Spark ingest: each file parsed by segflow's own CSV reader in a Spark task.

Spark lists and reads the files (``binaryFile``: any file-system URL the session reads); a
task per file stages it in an in-memory DuckDB with :func:`segflow.sources._readers.stage`,
the very function the DuckDB ingest stages a CSV file with, and returns its records:

    file ─▶ (task) stage(): rows (``_row`` = physical line - 1, every field as text),
            rejects (rows the parser cannot split: wrong number of fields, a runaway quote,
            bytes invalid in the encoding) and the reader's own count of the file
         ─▶ rows: mapping, validation and classification as for Parquet (module _ingest)
         ─▶ rejects: quarantined as ``malformed_row`` with their raw text and reason

Why not Spark's CSV reader: it does not number rows by their line in the file, skips blank
lines, and recovers from a broken quote differently (merging or losing the rows after it),
so its rows, numbers and quarantine would not be the DuckDB ingest's. Here they are the same
by construction. The price: one task parses one file (a large CSV is not split; a folder of
files is parsed in parallel), and a file at a non-local URL travels whole to its task
(``binaryFile`` content, at most 2 GB per file).
"""

from __future__ import annotations

import contextlib
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from segflow._duck import arrow_reader, arrow_table
from segflow.engine._spark import spark_error_line
from segflow.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from segflow.config import SourceSettings

#: What a staging task returns: a row per record (``_kind`` ``row`` or ``reject``) and one
#: per file (``file``: header in ``_fields``, the reader's count in ``_records``, the last
#: row number in ``_row``; or ``error``: a one-line message in ``raw_row``).
STAGED = pa.schema([
    ("path", pa.string()), ("_kind", pa.string()), ("_row", pa.int64()),
    ("_fields", pa.list_(pa.string())), ("raw_row", pa.string()), ("reason", pa.string()),
    ("column_name", pa.string()), ("_records", pa.int64()),
])
_BATCH = 50_000


@dataclass
class TextJob:
    """What a staging task needs (pickled to the executors)."""

    source: SourceSettings
    label: str  # the load's source_file (the file's own URL names it in a folder load)
    single: bool  # one file: its messages name ``label``

    def stage_task(self, batches: Any) -> Any:
        for batch in batches:
            for rec in batch.to_pylist():
                yield from self._stage_file(rec["path"], rec.get("content"))

    def _stage_file(self, url: str, content: bytes | None) -> Any:
        import duckdb

        from segflow.sources._readers import q, stage

        label = self.label if self.single else url
        with contextlib.ExitStack() as stack:
            if content is None:  # a local file: opened where it is
                path = _local_path(url)
            else:  # any other URL: Spark read the bytes; the reader needs a file
                folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="segflow-csv-"))
                path = Path(folder) / PurePosixPath(urllib.parse.urlparse(url).path).name
                path.write_bytes(content)
            con = duckdb.connect()
            stack.callback(con.close)
            try:
                staged = stage(con, self.source, path, label)
            except InputError as exc:
                yield _batch(url, "error", raw_row=[str(exc)])
                return
            header = list(staged.columns)
            fields = f"[{', '.join(f'CAST({q(h)} AS VARCHAR)' for h in header)}]"
            result = con.execute(f"SELECT _row, {fields} AS _fields FROM {staged.table}")
            last, records = 0, 0
            for rows in arrow_reader(result, _BATCH):
                if rows.num_rows:
                    last = max(last, int(pc.max(rows.column("_row")).as_py()))
                    records += rows.num_rows
                    yield _batch(url, "row", _row=rows.column("_row"), _fields=rows.column("_fields"))
            if staged.rejects:
                rej = arrow_table(con.execute(f"SELECT _row, raw_row, reason, column_name FROM "
                                              f"{staged.rejects}"))
                if rej.num_rows:
                    last = max(last, int(pc.max(rej.column("_row")).as_py()))
                    records += rej.num_rows
                    yield _batch(url, "reject", **{c: rej.column(c) for c in rej.column_names})
            if staged.tally is not None and staged.tally.complete:
                records = staged.tally.records  # the reader's own count (lines and bytes checked)
            yield _batch(url, "file", _row=[last], _fields=[header], _records=[records])


def _local_path(url: str) -> Path:
    """The local file of a ``file:`` URL as Spark's file sources give it: the path as it is
    (Spark decodes it: a name may hold spaces, ``#`` or ``%``), after ``file://`` or ``file:``."""
    rest = url.removeprefix("file://") if url.startswith("file://") else url.removeprefix("file:")
    return Path(rest)


def _batch(url: str, kind: str, **columns: Any) -> pa.RecordBatch:
    n = len(next(iter(columns.values())))
    arrays = []
    for f in STAGED:
        if f.name == "path":
            arrays.append(pa.array([url] * n, pa.string()))
        elif f.name == "_kind":
            arrays.append(pa.array([kind] * n, pa.string()))
        elif f.name in columns:
            value = columns[f.name]
            arrays.append(value.cast(f.type) if hasattr(value, "cast") else pa.array(value, f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays([_flat(a) for a in arrays], schema=STAGED)


def _flat(a: Any) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


@dataclass
class TextRead:
    """A CSV load read by Spark: ``rows`` (``_row`` and the header's columns, text),
    ``rejects`` (``_row, raw_row, reason, column_name``), ``records`` (the reader's count
    of every file together), the files without data rows (``empty``: name, and True for a
    file of 0 bytes, False for a header only) and the cached staging to release after the
    load. ``rows`` is None when no file has a byte (nothing to read a header from)."""

    rows: DataFrame | None
    rejects: DataFrame | None
    records: int
    staged: DataFrame | None
    empty: list[tuple[str, bool]]

    def release(self) -> None:
        if self.staged is not None:
            self.staged.unpersist()


def _zero_byte_files(session: SparkSession, url: str) -> list[str]:
    """The files of 0 bytes at ``url`` (a file, a folder or a glob), which Spark's
    ``binaryFile`` source does not list; hidden ones (``.`` and ``_``) left out as Spark
    leaves them out."""
    jvm = session.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    try:
        fs = path.getFileSystem(session.sparkContext._jsc.hadoopConfiguration())
        found = fs.globStatus(path) or []
        files = []
        for status in found:
            files += list(fs.listStatus(status.getPath())) if status.isDirectory() else [status]
    except Exception:  # noqa: BLE001 - the JVM's errors: Spark's read below names the cause
        return []
    return sorted(str(f.getPath().toString()) for f in files
                  if f.isFile() and f.getLen() == 0
                  and not f.getPath().getName().startswith((".", "_")))


def read_text(session: SparkSession, source: SourceSettings, url: str, label: str,
              local: bool) -> TextRead:
    """Read the CSV file or folder at ``url`` as one load (see the module notes).

    A folder's files are numbered one after another in path order (a file's rows come after
    the last row number of the files before it); they must share one header.

    Raises
    ------
    InputError
        Spark cannot list the files, or there is none, or a file cannot be staged (the
        reader's one-line message: bad header, unknown encoding...), or the headers differ.
        Files without data rows (0 bytes, a header only) are no error: see ``TextRead.empty``.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    try:
        files = session.read.format("binaryFile").load(url)
        files = files.select("path") if local else files.select("path", "content")
    except Exception as exc:  # JVM errors: missing path, unknown scheme
        raise InputError(f"Spark cannot read it: {spark_error_line(exc)}", file=label) from exc
    job = TextJob(source, label, local)
    blank = [label if local else f for f in _zero_byte_files(session, url)]
    staged = files.mapInArrow(job.stage_task, from_arrow_schema(STAGED)).cache()
    try:
        meta = sorted(staged.where("_kind IN ('file', 'error')").select(
            "path", "_kind", "_row", "_fields", "raw_row", "_records").collect())
        if not meta:  # Spark lists no file of 0 bytes
            if not blank:
                raise InputError("no file to read", file=label)
            staged.unpersist()
            return TextRead(None, None, 0, None, [(f, True) for f in blank])
        for m in meta:
            if m._kind == "error":
                raise InputError(m.raw_row)
        header = list(meta[0]._fields)
        for m in meta[1:]:
            if list(m._fields) != header:
                raise InputError(f"its header {list(m._fields)} differs from {header} of "
                                 f"{meta[0].path} (one load reads files of one layout)",
                                 file=m.path)
    except BaseException:
        staged.unpersist()
        raise
    offsets, before = {}, 0
    for m in meta:
        offsets[m.path], before = before, before + m._row
    shift = (F.lit(0) if len(meta) == 1 else
             F.create_map(*[F.lit(x) for kv in offsets.items() for x in kv])[F.col("path")])
    row = (F.col("_row") + shift).cast("long").alias("_row")
    rows = staged.where("_kind = 'row'").select(
        row, *[F.col("_fields")[i].alias(h) for i, h in enumerate(header)])
    rejects = staged.where("_kind = 'reject'").select(row, "raw_row", "reason", "column_name")
    headers_only = [(label if local else m.path, False) for m in meta if not m._records]
    empty = sorted([*headers_only, *((f, True) for f in blank)])
    return TextRead(rows, rejects, sum(m._records for m in meta), staged, empty)
