"""Text files without a header line, and fields separated by white space.

Two groups of a CSV source's ``options`` (``docs/data.md``, *Reading files*):

- ``header = false`` with ``names = ["master_id", "sample_id", "date", "cds", "dollars"]``:
  the file has no header line; its columns are ``names``, in file order; every line is data,
  so a row's number is its physical line (row 1 is line 1). A row with another number of
  fields than ``names`` is a ``malformed_row`` (``6 fields instead of the 5 of
  options.names``), by the same rules as a row that does not match a header.
- ``delimiter = "whitespace"``: runs of spaces and tabs separate the fields, and spaces and
  tabs at the start and the end of a line are ignored (whitespace-aligned printouts, the
  CDNOW sample). There is no quoting: a quote is an ordinary character, and a field can hold
  no space (``quote`` and ``escape`` are refused with it). A line of only spaces and tabs is
  a blank line (neither a row nor quarantined), as in every CSV.

A whitespace file is split in the engine, on whole columns: its lines are staged as one
column (DuckDB's CSV reader with no quote and the NUL byte as the delimiter, which a file on
this path does not hold, or, for any other file, the numbered line reader
:func:`segflow.sources._csvread.read_lines`), then :func:`split_lines` splits every line
with ``regexp_split_to_array``. Both paths end in that one statement, so ``segflow sources
check`` (always the line reader) and ``segflow ingest`` split, number and quarantine a line
alike. The reconciliation holds as for every CSV: header + blank + record lines equal the
file's lines, counted apart from the reader.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from segflow._duck import arrow_table
from segflow.config import SourceSettings
from segflow.errors import InputError
from segflow.sources._csvread import CsvTally, expected_fields, prescan, read_lines
from segflow.sources._names import refuse_repeated_names

#: The ``delimiter`` value that splits on runs of spaces and tabs.
WHITESPACE = "whitespace"
_SEP = r"[ \t]+"  # what separates fields
_EDGES = r"^[ \t]+|[ \t]+$"  # what is ignored at both ends of a line
_BLANK = r"[ \t]*"  # a blank line (full match)


@dataclass(frozen=True)
class Layout:
    """How a CSV source's lines are laid out: ``header`` (the first line names the
    columns), ``names`` (the columns of a file without a header line) and ``whitespace``
    (runs of spaces and tabs separate the fields)."""

    header: bool = True
    names: tuple[str, ...] | None = None
    whitespace: bool = False

    @property
    def skip(self) -> int:
        """Header lines before the first row (1 or 0)."""
        return 1 if self.header else 0


def layout(source: SourceSettings, label: str) -> Layout:
    """The layout options of ``source`` (``header``, ``names``, ``delimiter``), checked.

    Raises
    ------
    InputError
        ``header`` is not true or false; ``header = false`` without ``names`` (or ``names``
        with a header); ``names`` not a list of distinct, non-empty names, or holding
        ``_row``; ``delimiter = "whitespace"`` with ``quote`` or ``escape``.
    """
    opts: dict[str, Any] = source.options
    header = opts.get("header", True)
    if not isinstance(header, bool):
        raise InputError(f"options.header must be true or false, not {header!r}", file=label)
    names = opts.get("names")
    if names is not None:
        if header:
            raise InputError("options.names are the columns of a file without a header line; "
                             "set options.header = false too (a header names the columns)",
                             file=label)
        if (not isinstance(names, list) or not names
                or not all(isinstance(n, str) and n.strip() for n in names)):
            raise InputError("options.names must be a list of column names in file order, "
                             f"none empty (e.g. [\"id\", \"date\", \"amount\"]), not {names!r}",
                             file=label)
        refuse_repeated_names(names, label, row=None, trimmed=True)
        if "_row" in {n.strip().lower() for n in names}:
            raise InputError("a column named _row is reserved", file=label, column="_row")
    elif not header:
        raise InputError("options.header = false needs options.names: the column names in "
                         "file order (e.g. names = [\"id\", \"date\", \"amount\"])", file=label)
    delimiter = opts.get("delimiter")
    whitespace = isinstance(delimiter, str) and delimiter.strip().lower() == WHITESPACE
    if whitespace and ("quote" in opts or "escape" in opts):
        raise InputError("delimiter = 'whitespace' has no quoting (runs of spaces and tabs "
                         "always separate fields); remove options.quote and options.escape",
                         file=label)
    return Layout(header, tuple(n.strip() for n in names) if names else None, whitespace)


def whitespace_header(text: str) -> list[str]:
    """The names of a header line split on runs of spaces and tabs ([] for a blank line)."""
    first = io.StringIO(text, newline="").readline().rstrip("\r\n").strip(" \t")
    return re.split(_SEP, first) if first else []


def stage_lines(con: duckdb.DuckDBPyConnection, path: Path, columns: list[str], skip: int,
                encoding: str, label: str, limit: int | None, plain: bool,
                tmp: Any) -> tuple[str, str, CsvTally]:
    """Stage the rows of a ``delimiter = "whitespace"`` file: ``(rows table, rejects table,
    tally)``. ``columns``: the header's names or ``options.names``; ``skip``: header lines;
    ``plain``: a UTF-8, uncompressed file read whole (DuckDB may read its lines); ``tmp``
    names a temporary table. The rows table has ``_row`` and ``columns`` (VARCHAR)."""
    lines, rejects = tmp("lines"), tmp("rjt")
    con.execute(f"CREATE TEMP TABLE {rejects} (_row BIGINT, raw_row VARCHAR, reason VARCHAR, "
                "column_name VARCHAR)")
    tally = _engine_lines(con, path, lines, skip, tmp) if plain else None
    if tally is None:
        con.execute(f"DROP TABLE IF EXISTS {lines}")
        con.execute(f"CREATE TEMP TABLE {lines} (_row BIGINT, line VARCHAR)")
        try:
            tally = read_lines(con, path, label, lines, rejects, limit=limit, encoding=encoding,
                               skip=skip, skip_blank=False)
        except BaseException:
            con.execute(f"DROP TABLE {lines}")
            con.execute(f"DROP TABLE {rejects}")
            raise
    rows = tmp("stg")
    blank = split_lines(con, lines, rows, rejects, columns, named=not skip)
    con.execute(f"DROP TABLE {lines}")
    tally.blank_lines += blank
    tally.records -= blank
    tally.record_lines -= blank
    tally.check(label)
    return rows, rejects, tally


def _engine_lines(con: duckdb.DuckDBPyConnection, path: Path, lines: str, skip: int,
                  tmp: Any) -> CsvTally | None:
    """The lines of a simple file (:func:`segflow.sources._csvread.prescan`) read by DuckDB
    into ``lines`` (``_row`` = physical line - ``skip``, ``line``), or None when DuckDB
    cannot read every line as one (a reject, an error, another count of lines than the
    file's): the caller reads the file with the line reader."""
    scan = prescan(path)
    if not scan.simple:
        return None
    raw, rej = tmp("raw"), tmp("rej")
    from segflow.sources._readers import lit

    try:
        con.execute(
            f"CREATE TEMP TABLE {raw} AS SELECT line FROM read_csv({lit(str(path))}, "
            "columns={'line': 'VARCHAR'}, header=false, auto_detect=false, delim=chr(0), "
            f"quote='', escape='', encoding='utf-8', strict_mode=true, store_rejects=true, "
            f"rejects_table={lit(rej)}, rejects_scan={lit(rej + '_scan')})")
        rejected = con.execute(f"SELECT count(*) FROM {rej}").fetchone()[0]
    except duckdb.Error:
        rejected = -1
    for t in (rej, rej + "_scan"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    if rejected:  # an invalid byte, a line too long, a line end DuckDB reads otherwise
        con.execute(f"DROP TABLE IF EXISTS {raw}")
        return None
    # rowids follow the file order (segflow.sources._readers.in_file_order)
    con.execute(f"CREATE TEMP TABLE {lines} AS SELECT rowid - (SELECT min(rowid) FROM {raw}) + 1 "
                f"- {skip} AS _row, line FROM {raw}")
    con.execute(f"DROP TABLE {raw}")
    n = con.execute(f"SELECT count(*) FROM {lines}").fetchone()[0]
    if n != scan.lines:
        return None
    con.execute(f"DELETE FROM {lines} WHERE _row < 1")  # the header line
    data = scan.lines - skip
    return CsvTally(scan.size, scan.size, scan.lines, skip, 0, data, data, scan.digest)


def split_lines(con: duckdb.DuckDBPyConnection, lines: str, rows: str, rejects: str,
                columns: list[str], *, named: bool) -> int:
    """Split every line of ``lines`` (``_row, line``) on runs of spaces and tabs into
    ``rows`` (created: ``_row`` and ``columns``, VARCHAR, in row order); a line with another
    number of fields goes to ``rejects`` (``malformed_row``, its reason in the words of
    :func:`segflow.sources._csvread.malformed_reason`). Returns the number of blank lines
    (empty, or spaces and tabs only), which are neither."""
    from segflow.sources._readers import lit, q

    blank = con.execute(f"SELECT count(*) FROM {lines} WHERE line IS NULL "
                        f"OR regexp_full_match(line, {lit(_BLANK)})").fetchone()[0]
    n, split = len(columns), rows + "_split"
    # each line split once (the split is the cost: ~1 s per million lines on 2 busy cores);
    # the tables keep the lines' order (segflow.sources._readers.in_file_order)
    con.execute(f"""CREATE TEMP TABLE {split} AS SELECT _row, regexp_split_to_array(
                        regexp_replace(line, {lit(_EDGES)}, '', 'g'), {lit(_SEP)}) AS f
                    FROM {lines} WHERE line IS NOT NULL AND NOT regexp_full_match(line, {lit(_BLANK)})""")
    try:
        expected = lit(" instead of " + expected_fields(n, named))
        con.execute(
            f"""INSERT INTO {rejects} SELECT l._row, l.line,
                len(s.f) || CASE WHEN len(s.f) = 1 THEN ' field' ELSE ' fields' END || {expected},
                NULL FROM {lines} l JOIN (SELECT _row, f FROM {split} WHERE len(f) <> {n}) s
                ON l._row = s._row ORDER BY l._row""")
        cols = ", ".join(f"f[{i + 1}] AS {q(c)}" for i, c in enumerate(columns))
        con.execute(f"CREATE TEMP TABLE {rows} AS SELECT _row, {cols} FROM {split} "
                    f"WHERE len(f) = {n}")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {split}")
    return blank


def read_aligned(path: Path, names: list[str],
                 label: str) -> tuple[Any, tuple[int, int, str] | None]:
    """A whitespace-aligned file without a header, read as a source with ``header = false``,
    ``names`` and ``delimiter = "whitespace"`` is (the file commands' ``--format cdnow``).

    Returns
    -------
    (pyarrow.Table, (row, fields, reason) or None)
        The rows (``_row``, the line's number, and ``names``, text, in file order) and the
        first line the reader quarantines (its row, its field count and the reason: another
        number of fields, or bytes invalid in UTF-8), or None.

    Raises
    ------
    InputError
        The file is missing, empty or not text (one line naming it).
    """
    from segflow.sources._readers import q, stage

    source = SourceSettings(name="file", table="transactions", format="csv",
                            options={"header": False, "names": list(names),
                                     "delimiter": WHITESPACE})
    con = duckdb.connect()
    try:
        staged = stage(con, source, path, label)
        cols = ", ".join(["_row", *(q(n) for n in names)])
        rows = arrow_table(con.execute(f"SELECT {cols} FROM {staged.table} ORDER BY _row"))
        first = con.execute(f"SELECT _row, raw_row, reason FROM {staged.rejects} ORDER BY _row "
                            "LIMIT 1").fetchone()
    finally:
        con.close()
    if first is None:
        return rows, None
    return rows, (int(first[0]), len(re.split(_SEP, first[1].strip(" \t"))), first[2])
