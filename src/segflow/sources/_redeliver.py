"""A file delivered again under its name with other content (DuckDB ingest).

A source's ``redelivery`` setting says what the new delivery does to the rows its earlier
deliveries stored (the rows whose ``source_file`` is the file's):

- ``keep`` (default): the new delivery adds its new rows and corrects changed ones (same
  key, new values); a stored row it does not restate stays in the store. Such rows are
  counted (:func:`stale_rows`: ``rows_stale`` of the load, a warning naming the file):
  with a key (``transaction_id``, or ``customer_id`` for customers), the stored rows of the
  file whose key no row of the new delivery has (an order deleted upstream, an order id
  changed); with a ``duplicate_key`` (or a customers source keyed by ``valid_from``), the
  stored rows no row of the new delivery equals on those columns; transaction lines
  without any id: none when the file only grew at its end, else every row stored from it
  (each line was loaded again as a new one, beside them).
- ``replace``: the rows, quarantine records, logged duplicates and flags of the file's
  earlier deliveries are removed (:func:`forget_file`) in the load's transaction, before the
  new delivery is classified, which then loads as the file's first load did; the earlier
  loads keep their row in ``loads`` with status ``replaced``. When the files of the source
  do not restate each other's rows, the store then holds what an ingest of the current
  files into a new store holds; a delivery that restates rows stored from another file
  of the source is warned about (:func:`note_overlap`): there the latest load wins, where a
  new store would take the last file's version.

Files only: a database source (Postgres) is read whole at every ingest, often by a query of
recent rows, and its earlier rows are not judged by a new read. The Spark ingest does the
same on the warehouse's tables, with Spark joins (:mod:`segflow.warehouse._stored`).
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb

from segflow.config import SourceSettings
from segflow.sources._load import DUPLICATES_DDL, FLAGS_DDL, LoadCounts, _eq
from segflow.sources._readers import lit, q
from segflow.sources._rules import duplicate_columns, row_key
from segflow.store import CANONICAL_TABLES


def _mine(source: SourceSettings, label: str) -> str:
    return f"source = {lit(source.name)} AND source_file = {lit(label)}"


def stale_rows(con: duckdb.DuckDBPyConnection, source: SourceSettings, label: str,
               val: str | None, present: list[str], mapped: Collection[str], *,
               relined: bool) -> int:
    """Rows stored from earlier deliveries of ``label`` that the new delivery (validated
    rows ``val``, None for a file without rows) does not restate; see the module notes.
    ``relined``: transaction lines without ids that were all loaded again as new lines."""
    table, key = source.table, row_key(source, mapped)
    dup = duplicate_columns(source, present, mapped)
    stored = f"main.{table} t WHERE t.{_mine(source, label)}"
    if val is None or relined:
        restated = "false"
    elif key:
        restated = f"EXISTS (SELECT 1 FROM {val} v WHERE v.v_{key} = t.{q(key)})"
    elif dup is not None:
        cols = [c for c in CANONICAL_TABLES[table] if c in dup]
        restated = f"EXISTS (SELECT 1 FROM {val} v WHERE {_eq(cols, 'v', 't', store=True)})"
    else:  # lines without ids, grown at the end: every stored line is read again
        restated = "true"
    return int(con.execute(f"SELECT count(*) FROM {stored} AND NOT ({restated})").fetchone()[0])


def note_stale(counts: LoadCounts, source: SourceSettings, mapped: Collection[str],
               present: list[str], *, empty: bool) -> None:
    """The warning of a load that leaves ``counts.rows_stale`` rows of earlier deliveries."""
    n = counts.rows_stale
    if not n:
        return
    key = row_key(source, mapped)
    why = ("it has no rows" if empty else
           f"no row of it has their {key}" if key else
           "no row of it equals them" if duplicate_columns(source, present, mapped) is not None
           else "its lines have no id: each was loaded again beside them")
    counts.warn_file(
        f"file {counts.source_file}: delivered again with other content; {n:,} rows stored "
        f"from its earlier delivery are not in it ({why}) and stay in the store; set "
        f"redelivery = \"replace\" on source {source.name!r} to replace the file's rows "
        "(docs/data.md)")


def forget_file(con: duckdb.DuckDBPyConnection, source: SourceSettings, counts: LoadCounts) -> None:
    """Remove what earlier deliveries of the file stored (inside the load's transaction):
    its canonical rows, quarantine records, logged duplicates and flags; mark their loads
    ``replaced``; note it in a warning."""
    mine = _mine(source, counts.source_file)
    removed = con.execute(f"SELECT count(*) FROM main.{source.table} WHERE {mine}").fetchone()[0]
    con.execute(f"DELETE FROM main.{source.table} WHERE {mine}")
    con.execute(f"DELETE FROM main.quarantine WHERE {mine}")
    for ddl, table in ((DUPLICATES_DDL, "ingest_duplicates"), (FLAGS_DDL, "ingest_flags")):
        con.execute(ddl)
        con.execute(f"DELETE FROM main.{table} WHERE {mine}")
    con.execute(f"UPDATE main.loads SET status = 'replaced' WHERE {mine} AND status = 'ok'")
    counts.warn_file(forgot_message(counts.source_file, removed))


def forgot_message(label: str, removed: int) -> str:
    """The warning of a file whose earlier deliveries' ``removed`` rows were removed
    (the DuckDB and the Spark ingest share it)."""
    return (f"file {label}: delivered again with other content; the {removed:,} rows "
            "its earlier delivery stored were removed, and this delivery loaded in their place "
            "(redelivery = \"replace\")")


def note_overlap(con: duckdb.DuckDBPyConnection, source: SourceSettings, cls: str,
                 counts: LoadCounts) -> None:
    """After :func:`forget_file`: a warning when files of the source restate each other's
    rows: rows of the new delivery matching rows stored from other files (status ``loaded``
    or ``replace``: only other files' rows are left to match), or rows of other files logged
    as ``already_loaded`` (they may have been rows of the removed delivery)."""
    here = con.execute(f"SELECT count(*) FROM {cls} WHERE _status IN ('loaded', 'replace')"
                       ).fetchone()[0]
    there = con.execute(
        "SELECT count(*) FROM main.ingest_duplicates WHERE source = ? AND source_file <> ? "
        "AND kind = 'already_loaded'", [source.name, counts.source_file]).fetchone()[0]
    note_restated(counts, source, here, there)


def note_restated(counts: LoadCounts, source: SourceSettings, here: int, there: int) -> None:
    """The warning of :func:`note_overlap` (``here``: rows of the delivery matching rows of
    other files; ``there``: rows of other files logged as ``already_loaded``), none when
    both are 0 (the DuckDB and the Spark ingest share it)."""
    if here or there:
        counts.warn_file(
            f"file {counts.source_file}: files of source {source.name!r} restate each other's "
            f"rows ({here:,} rows of this delivery restate rows of other files; {there:,} rows "
            "of other files were duplicates of rows loaded before them), so the store may differ "
            "from an ingest of the current files into a new store: the latest load wins a "
            "restated row, and rows shared with the removed delivery are not brought back "
            "(docs/data.md)")
