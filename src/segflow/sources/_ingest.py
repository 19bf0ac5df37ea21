"""Ingest: every ``[[sources]]`` entry into the canonical tables, audited and reconciled.

One load = one file (or database table) of one source, written in one store transaction:
a crash in the middle leaves the store as it was before that load. Customers sources are
loaded first, so that ``unknown_customer`` can be checked against them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
import warnings
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segflow._result import TableResult
from segflow.config import Settings, SourceSettings
from segflow.errors import BinaryFileError, FileSchemaError, InputError, StoreError
from segflow.sources._check import resolve_mapping
from segflow.sources._discover import discover, file_hash, relative, several_files, source_format
from segflow.sources._load import (
    LoadCounts,
    classify,
    has_header,
    note_empty,
    record_load,
    rollup_orders,
    write,
)
from segflow.sources._once import judge
from segflow.sources._readers import blank_file, has_rows, refuse_nested, stage
from segflow.sources._redeliver import forget_file, note_overlap, note_stale, stale_rows
from segflow.sources._rules import flags
from segflow.sources._validate import check_timezone, resolve, validate
from segflow.store import CANONICAL_TABLES, Store, interruptible

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import plotly.graph_objects as go

_ORDER = ["customers", "transactions", "events", "campaign_exposures", "survey_responses"]
_COLUMNS = [
    "source", "source_file", "table", "status", "rows_read", "rows_accepted",
    "rows_quarantined", "rows_duplicate", "rows_replaced", "rows_anonymous", "rows_flagged",
    "values_flagged", "rows_released", "rows_stale", "load_id",
]

ProgressFn = Callable[[str, int, int], None]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class IngestReport(TableResult):
    """What an ingest did, per source file: the reconciliation and the quarantine reasons.

    ``rows_read = rows_accepted + rows_quarantined + rows_duplicate`` holds for every row of
    :meth:`to_pandas`. ``rows_replaced`` (late corrections) is part of ``rows_accepted``;
    ``rows_anonymous`` (transactions kept without a customer id) and ``rows_flagged`` (rows
    with a value noted in the table ``ingest_flags``, ``anonymous`` aside; ``values_flagged``
    counts those values: a row with four Excel-safe cells is one row, four values) too; ``rows_released`` counts rows an earlier load
    had quarantined that pass now (their old quarantine record is removed). A file whose bytes were
    loaded before has status ``unchanged`` and zero counts; a file without data rows (a header
    only, or an empty text file) has status ``empty``, zero counts and a warning; a binary
    file of a folder or glob source, status ``rejected``, zero counts and a warning
    (:func:`reject_file`); a file of a folder that is not read, ``skipped``.
    ``rows_stale`` (outside the reconciliation) counts the rows an earlier delivery of the
    same file stored that this delivery does not restate and that stay in the store
    (:mod:`segflow.sources._redeliver`).

    Attributes
    ----------
    loads : list of LoadCounts
        One entry per file (or table) per source.
    warnings : list of str
        Things kept but worth a look (e.g. text that looks like a spreadsheet formula).
    """

    def __init__(self, loads: list[LoadCounts]) -> None:
        self.loads = loads
        self.warnings = [w for ld in loads for w in ld.warnings]

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{c: getattr(ld, c) for c in _COLUMNS} for ld in self.loads]
        return pd.DataFrame(rows, columns=_COLUMNS)

    def rules(self) -> pd.DataFrame:
        """Quarantined rows per source, file and rule."""
        import pandas as pd

        rows = [
            {"source": ld.source, "source_file": ld.source_file, "rule": rule, "rows": n}
            for ld in self.loads
            for rule, n in ld.rules.items()
        ]
        return pd.DataFrame(rows, columns=["source", "source_file", "rule", "rows"])

    @property
    def reconciles(self) -> bool:
        """True when every load's counts add up (always, unless a bug slipped through)."""
        return all(ld.reconciles for ld in self.loads)

    def totals(self) -> dict[str, int]:
        frame = self.to_pandas()
        return {c: int(frame[c].sum()) for c in _COLUMNS if c.startswith(("rows_", "values_"))}

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["totals"] = self.totals()
        out["rules"] = self.rules().to_dict(orient="records")
        out["warnings"] = self.warnings
        out["reconciles"] = self.reconciles
        return out

    def figure(self) -> go.Figure:
        import plotly.graph_objects as go

        frame = self.to_pandas().groupby("source", sort=False)[
            ["rows_accepted", "rows_quarantined", "rows_duplicate"]].sum()
        fig = go.Figure()
        for col, name in [("rows_accepted", "accepted"), ("rows_quarantined", "quarantined"),
                          ("rows_duplicate", "duplicate")]:
            fig.add_bar(x=frame.index.tolist(), y=frame[col].tolist(), name=name)
        fig.update_layout(barmode="stack", title="Rows read per source", yaxis_title="rows")
        return fig

    def __repr__(self) -> str:
        t = self.totals() if self.loads else {}
        return (f"IngestReport({len(self.loads)} loads, read={t.get('rows_read', 0)}, "
                f"accepted={t.get('rows_accepted', 0)}, quarantined={t.get('rows_quarantined', 0)}, "
                f"duplicate={t.get('rows_duplicate', 0)})")


def ingest(
    store: Store,
    settings: Settings,
    project_dir: Path,
    *,
    progress: ProgressFn | None = None,
    now: dt.datetime | None = None,
    force: bool = False,
) -> IngestReport:
    """Read every ``[[sources]]`` entry into the canonical tables of ``store``.

    Parameters
    ----------
    store : Store
        The project's store.
    settings : Settings
        The parsed ``segflow.toml``; its ``sources`` are loaded, customers first.
    project_dir : Path
        Folder that source paths are relative to.
    progress : callable, optional
        Called as ``progress(label, done, total)`` after each file.
    now : datetime, optional
        Load time (tz-naive UTC) used by ``future_date``; default: the current time.
    force : bool, default False
        Re-read files whose bytes were loaded before (to re-check quarantined rows, e.g. after
        the missing customers arrived). Rows already stored count as duplicates; rows that
        pass now are loaded and leave the quarantine.

    Returns
    -------
    IngestReport
        The per-file reconciliation (``to_pandas()``) and the quarantine reasons (``rules()``).

    Raises
    ------
    InputError
        Before anything is written, when a file is missing, binary, not a file of its format
        (a Parquet file of 0 bytes) or lacks a mapped column (a header-only file too). Row-level
        problems never raise: they are quarantined. A binary file of a folder or glob source,
        or a Parquet file there whose columns do not fit the mapping, is refused alone
        (status ``rejected``, a warning naming it) unless the source says
        ``binary_files = "fail"``.

    Warns
    -----
    UserWarning
        Per file without data rows (loaded as 0 rows), per file delivered again that leaves
        rows of its earlier delivery in the store (``rows_stale``) or replaces them
        (``redelivery = "replace"``), and with the totals of quarantined and duplicate rows.

    Notes
    -----
    Re-running on unchanged files adds nothing (file hash); rows already in the store are
    counted as duplicates; a row with the same (source, key) but new values replaces the old
    one (key: ``transaction_id`` for transactions, ``customer_id`` for customers).
    """
    project_dir = Path(project_dir)
    now = now or _now()
    sources = sorted(settings.sources, key=lambda s: _ORDER.index(s.table))
    plan = [(src, path) for src in sources for path in _paths(src, project_dir)]
    refused: list[tuple[SourceSettings, Path, BinaryFileError]] = []
    import duckdb

    # one private in-memory DuckDB for every file's pre-flight (starting one costs ~10 ms
    # of CPU); each file is staged on a connection of its own (its temporary tables and
    # session settings go with it)
    scratch = interruptible(duckdb.connect())
    try:
        for src, path in plan:  # pre-flight: fail before anything is written
            try:
                preflight(src, path, project_dir, scratch=scratch)
            except BinaryFileError as exc:  # one file of a folder: refused alone (binary_files)
                if (path is None or src.binary_files == "fail"
                        or not several_files(src, project_dir)):
                    raise
                refused.append((src, path, exc))
    finally:
        scratch.close()
    no_file_fits([src.name for src, _ in plan], [(src.name, exc) for src, _, exc in refused],
                 loaded_sources(store) if refused else ())
    gone = {(src.name, path) for src, path, _ in refused}
    plan = [(src, path) for src, path in plan if (src.name, path) not in gone]
    loads: list[LoadCounts] = _skipped(sources, project_dir)
    loads += [reject_file(store, src, path, project_dir, exc, now=now)
              for src, path, exc in refused]
    for i, (src, path) in enumerate(plan):
        loads.append(load_one(store, src, path, project_dir, now=now, force=force))
        if progress:
            progress(loads[-1].source_file, i + 1, len(plan))
    _warn(loads)
    return IngestReport(loads)


def _paths(source: SourceSettings, project_dir: Path) -> list[Path | None]:
    if source.format == "postgres":
        return [None]
    return list(discover(source, project_dir)[0])


def _skipped(sources: list[SourceSettings], project_dir: Path) -> list[LoadCounts]:
    """One ``skipped`` entry (with the reason as a warning) per unread file of a folder."""
    out = []
    for src in sources:
        if src.format == "postgres":
            continue
        for path, reason in discover(src, project_dir)[1]:
            counts = LoadCounts("", src.name, relative(path, project_dir), src.table, "skipped")
            counts.warnings.append(f"file {counts.source_file}: not read: {reason}")
            out.append(counts)
    return out


def no_file_fits(files: list[str], refused: list[tuple[str, BinaryFileError]],
                 loaded: Collection[str] = ()) -> None:
    """Stop the ingest when every file of a source that never loaded a file was refused:
    ``files`` names each file's source (one entry per file), ``refused`` the pre-flight's
    refusals (source, error), ``loaded`` the sources with a load in the store (status
    ``ok``). Refusing one odd file of a folder is right; refusing every file of a source
    that never loaded one would load nothing with only warnings and exit code 0. When one of
    them was refused for its columns, the mapping is the project's mistake (a misspelt
    column, the wrong delimiter); when all hold binary data, the path is (a folder of images
    or archives, the wrong format). A source that loaded files before (a drop folder whose
    loaded files were moved away, whose one new file is bad) has its files refused alone.

    Raises
    ------
    FileSchemaError
        The source's first refusal for its columns, when no file of the source is left.
    BinaryFileError
        The source's first refusal, when every file of the source holds binary data.
    """
    for name in dict.fromkeys(files):
        mine = [exc for src, exc in refused if src == name]
        if not mine or len(mine) < files.count(name) or name in loaded:
            continue
        schema = [exc for exc in mine if isinstance(exc, FileSchemaError)]
        first = (schema or mine)[0]
        if schema:
            raise FileSchemaError(f"{first.message}; no file of source {name!r} has the "
                                  "mapped columns: check the mapping", file=first.file,
                                  row=first.rows or None, column=first.column)
        raise BinaryFileError(f"{first.message}; no file of source {name!r} can be read as "
                              "its format: check its path and format", file=first.file,
                              row=first.rows or None, column=first.column)


def loaded_sources(store: Store) -> set[str]:
    """The sources with a load of a file in the store's load log (status ``ok``)."""
    rows = store.raw.execute("SELECT DISTINCT source FROM main.loads WHERE status = 'ok'")
    return {r[0] for r in rows.fetchall()}


#: A file's row in the load log (``loads``) for a file refused whole (binary data).
_REJECTED_SQL = ("SELECT count(*) FROM main.loads WHERE source = ? AND source_file = ? "
                 "AND file_hash = ? AND status = 'rejected'")


def reject_file(store: Store, source: SourceSettings, path: Path, project_dir: Path,
                error: InputError, *, now: dt.datetime) -> LoadCounts:
    """The report entry (status ``rejected``, one warning naming the file) of a file of a
    folder or glob source refused whole, and its row in the load log (``loads``, status
    ``rejected``, no rows): once per file content, so ingesting it again adds no row and
    ``segflow refresh`` does not count it as new (:func:`rejected_before`)."""
    counts = rejected(source, load_label(source, path, project_dir), error)
    digest = file_hash(path)
    if not rejected_before(store, source, counts.source_file, digest):
        store.raw.execute(
            "INSERT INTO main.loads (load_id, source, source_file, file_hash, target_table, "
            "rows_read, rows_accepted, rows_quarantined, rows_duplicate, started_at, "
            "finished_at, status, rows_stale) VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0, ?, ?, "
            "'rejected', 0)",
            [counts.load_id, source.name, counts.source_file, digest, source.table, now, now])
    return counts


def rejected(source: SourceSettings, label: str, error: InputError) -> LoadCounts:
    """The report entry of the file ``label`` of ``source`` refused whole for ``error``:
    status ``rejected``, zero counts, one warning naming the file (the DuckDB and the Spark
    ingest share it)."""
    counts = LoadCounts(uuid.uuid4().hex[:12], source.name, label, source.table, "rejected")
    counts.warn_file(f"{error.in_file(label)}; not loaded, the other files of source "
                     f"{source.name!r} are (binary_files = \"fail\" stops the ingest instead)")
    return counts


def rejected_before(store: Store, source: SourceSettings, label: str, digest: str) -> bool:
    """Whether the file ``label`` of ``source`` with these bytes (SHA-256 ``digest``) was
    refused whole before (a ``rejected`` row in ``loads``, :func:`reject_file`)."""
    return bool(store.raw.execute(_REJECTED_SQL, [source.name, label, digest]).fetchone()[0])


def load_label(source: SourceSettings, path: Path | None, project_dir: Path) -> str:
    """The ``source_file`` of a load: the file relative to the project (``:table`` added
    for a DuckDB file), or ``postgres:<table>``."""
    if path is None:
        return f"postgres:{source.options.get('table') or 'query'}"
    label = relative(path, project_dir)
    if source_format(source, path) == "duckdb":
        label += f":{source.options.get('table') or 'query'}"
    return label


def preflight(source: SourceSettings, path: Path | None, project_dir: Path, *,
              scratch: duckdb.DuckDBPyConnection | None = None) -> None:
    """Stage the first rows of the file ``path`` of ``source`` in a private DuckDB and
    resolve its mapping: the whole-file errors (:class:`BinaryFileError` for a file that is
    not a file of its format; :class:`FileSchemaError` for a Parquet file whose columns do
    not fit the mapping: a mapped column missing, or holding lists), raised before anything
    is written. ``scratch``: a private in-memory DuckDB to stage in, on a new connection to
    it (closed after, with its temporary tables); default a new DuckDB."""
    import duckdb

    # Ctrl-C stops its queries (cli._interrupt)
    con = interruptible(scratch.cursor() if scratch is not None else duckdb.connect())
    try:
        check_timezone(con, source)
        if blank_file(source, path):
            return
        staged = stage(con, source, path, load_label(source, path, project_dir), limit=50)
        resolve_mapping(con, source, path, staged)  # a Parquet file's schema: refused alone
    finally:
        con.close()


#: A file whose bytes were loaded before: under any name when that load read rows (a file
#: sent again), else under the same name (two empty months have the same bytes). The Spark
#: ingest and ``segflow refresh`` apply the same rule (:func:`loaded_before`).
UNCHANGED_SQL = ("SELECT count(*) FROM loads WHERE source = ? AND file_hash = ? AND status = 'ok' "
                 "AND (rows_read > 0 OR source_file = ?)")


def loaded_before(store: Store, source: SourceSettings, label: str, digest: str) -> bool:
    """Whether the file ``label`` of ``source`` with the SHA-256 ``digest`` is unchanged
    (see :data:`UNCHANGED_SQL`)."""
    return bool(store.raw.execute(UNCHANGED_SQL, [source.name, digest, label]).fetchone()[0])


def load_one(
    store: Store,
    source: SourceSettings,
    path: Path | None,
    project_dir: Path,
    *,
    now: dt.datetime,
    force: bool = False,
) -> LoadCounts:
    """Load one file of one source in one transaction; see :func:`ingest`."""
    label = load_label(source, path, project_dir)
    load_id = uuid.uuid4().hex[:12]
    counts = LoadCounts(load_id, source.name, label, source.table)
    seen = path.stat() if path is not None else None  # before the bytes are hashed
    digest = file_hash(path) if path is not None else None
    if digest and not force and loaded_before(store, source, label, digest):
        counts.status = "unchanged"
        return counts
    started = _now()
    # Staging, validation and classification run on a private cursor (its temporary tables
    # are its own and vanish when it closes); only the writes form the store transaction, so
    # a crash or an error leaves the store as it was before this load. With redelivery =
    # "replace", a file loaded before drops its earlier rows first, in the same transaction.
    con = store.raw.cursor()
    try:
        staged = None if blank_file(source, path) else stage(con, source, path, label)
        specs = resolve(source, staged) if staged is not None else {}
        if staged is not None:
            refuse_nested(con, staged, [s.label for s in specs.values()])
        read = staged.tally.digest if staged and staged.tally and staged.tally.digest else digest
        again = con.execute("SELECT count(*) FROM main.loads WHERE source = ? AND source_file = ? "
                            "AND status = 'ok'", [source.name, label]).fetchone()[0] > 0
        # a file delivered again (a database table is read whole at every ingest, often by
        # a query of recent rows: its earlier rows are not judged by the new read)
        redelivered = again and path is not None
        replace = redelivered and source.redelivery == "replace"
        txn = _Transaction(con)
        try:
            if replace:
                txn.begin()
                forget_file(con, source, counts)
            if staged is None or not has_rows(con, staged):
                _write_empty(con, source, staged, counts, txn,
                             stale=redelivered and not replace, file_hash=read,
                             started=started, mapped=set(specs))
            else:
                _load_rows(con, source, staged, specs, counts, txn, again=again,
                           stale=redelivered and not replace, replace=replace, now=now,
                           file_hash=read, started=started)
            _recheck(staged, counts, path, digest, read, seen)
        except BaseException:
            if txn.open:
                con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()
    return counts


class _Transaction:
    """The load's store transaction: opened once, when the writes begin (or before the
    classification, when an earlier delivery's rows are removed first)."""

    def __init__(self, con) -> None:
        self.con, self.open = con, False

    def begin(self) -> None:
        if not self.open:
            self.con.execute("BEGIN TRANSACTION")
            self.open = True


def _write_empty(con, source: SourceSettings, staged, counts: LoadCounts, txn: _Transaction, *,
                 stale: bool, file_hash: str | None, started: dt.datetime,
                 mapped: set[str]) -> None:
    """A file without data rows: 0 rows, its load recorded with a warning; the rows of an
    earlier delivery of it (``stale``: delivered again, redelivery = "keep") are all stale."""
    note_empty(counts, blank=staged is None, header=has_header(source))
    present = list(CANONICAL_TABLES[source.table])
    if stale:
        counts.rows_stale = stale_rows(con, source, counts.source_file, None, present, mapped,
                                       relined=False)
        note_stale(counts, source, mapped, present, empty=True)
    txn.begin()
    record_load(con, source, counts, file_hash=file_hash, started=started)


def _load_rows(con, source: SourceSettings, staged, specs, counts: LoadCounts,
               txn: _Transaction, *, again: bool, stale: bool, replace: bool,
               now: dt.datetime, file_hash: str | None, started: dt.datetime) -> None:
    """Validate, classify and write the rows of a staged file (the writes in ``txn``):
    ``again``, read before under its name; ``stale``, count the rows of its earlier
    delivery it does not restate; ``replace``, they were removed (:mod:`._redeliver`)."""
    suffix = uuid.uuid4().hex[:8]
    val, cls, orders = f"_sf_val_{suffix}", f"_sf_cls_{suffix}", None
    has_customers = con.execute("SELECT count(*) FROM main.customers").fetchone()[0] > 0
    known = "main.customers" if has_customers and source.table != "customers" else None
    flag_list, once, mapped = flags(source, specs), {}, set(specs)
    if not write_once(source, again):
        present = validate(con, source, staged, specs, now=now, known_customers=known, out=val)
        warning = classify(con, source, val, present, cls, against_store=True,
                           staged=staged, mapped=mapped)
        if warning:
            counts.warnings.append(warning)
        if source.rollup and source.table == "transactions":
            orders = f"_sf_ord_{suffix}"
            rollup_orders(con, source, cls, orders, against_store=True)
        if replace:
            note_overlap(con, source, cls, counts)
        elif stale:
            counts.rows_stale = stale_rows(con, source, counts.source_file, val, present,
                                           mapped, relined=bool(warning))
            note_stale(counts, source, mapped, present, empty=False)
    else:  # one narrow pass, then each accepted row written once
        present = list(CANONICAL_TABLES[source.table])
        got = judge(con, source, staged, specs, now=now, known_customers=known, name=cls,
                    mapped=mapped, flag_list=flag_list)
        cls, once = got.cls, {"insert_from": got.rows, "flagged": got.flagged}
    txn.begin()
    write(con, source, staged, cls, present, counts, now=now, file_hash=file_hash,
          started=started, orders=orders, flag_list=flag_list, mapped=mapped, **once)


def write_once(source: SourceSettings, again: bool) -> bool:
    """Whether a file of ``source`` is loaded by one narrow judging pass and one insert
    (:mod:`segflow.sources._once`), else from a validated copy of the file. The copy serves
    order roll-ups (lines are judged per order) and a file read ``again`` (loaded before
    under the same name: most of its rows are likely stored, so the narrow pass would pick
    nearly every row for a full parse anyway)."""
    return not again and not (source.rollup and source.table == "transactions")


def _recheck(staged, counts: LoadCounts, path: Path | None, before: str | None,
             read: str | None, seen: os.stat_result | None = None) -> None:
    """Before the commit: the counts match the reader's own count of the file, and the file
    still has the bytes that were read (else nothing of it is written)."""
    tally = staged.tally if staged is not None else None
    if tally is not None and tally.complete and counts.rows_read != tally.records:
        raise StoreError(f"file {staged.label}: the reader counted {tally.records} records but "
                         f"{counts.rows_read} rows were classified; nothing was loaded from it")
    if path is None or before is None:
        return
    if counts.status == "empty" and seen is not None:
        _settle(path, seen, counts.source_file)
    now = file_hash(path)
    if now != before or now != read:
        raise InputError("the file changed while it was being loaded (its bytes differ from "
                         "those read); nothing was loaded from it; run ingest again",
                         file=counts.source_file)


#: Seconds a file without data rows must have stayed as it was before its load commits.
SETTLE_SECONDS = 1.0


def _settle(path: Path, seen: os.stat_result, label: str) -> None:
    """Wait until ``path``, as ``seen`` when its load began, is :data:`SETTLE_SECONDS`
    old, and check it is still that file. A file written in place is 0 bytes (or a header)
    for an instant after it is truncated, and a load without rows takes less than that
    instant: the hash compared afterwards could miss the rewrite, and the truncated file
    would be recorded as an empty delivery.

    Raises
    ------
    InputError
        The file was modified (or replaced) since the load began.
    """
    age = time.time() - seen.st_mtime
    if age < SETTLE_SECONDS:
        time.sleep(SETTLE_SECONDS - max(age, 0.0))
    now = path.stat()
    if (now.st_ino, now.st_size, now.st_mtime_ns) != (seen.st_ino, seen.st_size,
                                                       seen.st_mtime_ns):
        raise InputError("the file changed while it was being loaded (it was written to "
                         "since the load began); nothing was loaded from it; run ingest again",
                         file=label)


def _warn(loads: list[LoadCounts]) -> None:
    for ld in loads:
        for message in ld.file_warnings:
            warnings.warn(message, UserWarning, stacklevel=3)
    quarantined = sum(ld.rows_quarantined for ld in loads)
    duplicates = sum(ld.rows_duplicate for ld in loads)
    if quarantined or duplicates:
        warnings.warn(
            f"ingest quarantined {quarantined} rows and skipped {duplicates} duplicate rows; "
            "see the table 'quarantine' and the report",
            stacklevel=3,
        )
