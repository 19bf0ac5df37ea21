"""Readers: stage each file of a source as a DuckDB temporary table (the files are found by
:mod:`segflow.sources._discover`).

A staged table has one column ``_row`` (the 1-based data row number in the file, header not
counted) and the source columns, text as VARCHAR (CSV, JSON lines, Excel) or with the types
the format carries (Parquet, database tables). Nothing is loaded into Python memory except
Excel sheets (openpyxl has no streaming columnar reader; a sheet holds at most ~1M rows).
CSV rows the parser cannot split (wrong number of fields, broken quoting, invalid encoding)
are kept in a second table ``rejects`` with their raw text, so they can be quarantined.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from segflow.config import SourceSettings
from segflow.errors import BinaryFileError, InputError
from segflow.sources._binary import binary_kind, utf16_order
from segflow.sources._csvread import (
    COMPRESSED,
    CsvTally,
    csv_buffer_sizes,
    head_bytes,
    prescan,
    read_csv_file,
    read_lines,
    reword_rejects,
)
from segflow.sources._discover import _FILE_FORMATS, _suffix, source_format
from segflow.sources._names import refuse_repeated_names
from segflow.sources._textlines import WHITESPACE, Layout, layout, stage_lines, whitespace_header


@dataclass
class Staged:
    """A source file (or database table) staged in DuckDB."""

    table: str
    columns: dict[str, str]  # source column -> DuckDB type
    label: str  # the file (relative to the project) or the database table
    rejects: str | None = None  # table (_row, raw_row, reason) of unparseable CSV rows
    temp_tables: list[str] = field(default_factory=list)
    temp_views: list[str] = field(default_factory=list)
    tally: CsvTally | None = None  # the CSV reader's own count of the file (CSV only)
    nested: list[str] = field(default_factory=list)  # list/struct columns, staged as JSON text
    #: source column -> staged DOUBLE column (not a source column) with the value of each
    #: number cell, NULL for text cells (Excel: ids follow the float rule per cell)
    numbers: dict[str, str] = field(default_factory=dict)

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        for name in self.temp_views:
            con.execute(f"DROP VIEW IF EXISTS {name}")
        for name in self.temp_tables:
            con.execute(f"DROP TABLE IF EXISTS {name}")


def q(name: str) -> str:
    """Quote an identifier for DuckDB SQL (any character but NUL, which DuckDB's parser
    cannot take inside a quoted name: :func:`header_names` refuses such a name first)."""
    if "\x00" in name:
        raise ValueError(f"a column name with a NUL byte cannot be quoted: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def header_names(written: list[str], label: str) -> list[str]:
    """The names of a header row trimmed like values (docs/data.md, *Trimming*: spaces,
    tabs, NUL and the other characters of :data:`~segflow.sources._ids.TRIM_CHARS` at either
    end) and Excel-safe text read as the text of its quotes (``="customer"`` is
    ``customer``: :func:`~segflow.sources._ids.excel_name`); InputError naming the column
    when a NUL byte is left inside a name."""
    from segflow.sources._ids import TRIM_CHARS, excel_name  # _ids imports this module

    names = [excel_name(h.strip(TRIM_CHARS)) for h in written]
    for i, name in enumerate(names):
        if "\x00" in name:
            raise InputError(f"header field {i + 1} holds a NUL byte inside the column name; "
                             "remove it", file=label, row=0, column=name.replace("\x00", "<NUL>"))
    return names


def lit(value: str) -> str:
    """Quote a string literal for DuckDB SQL."""
    return "'" + value.replace("'", "''") + "'"


def _tmp(prefix: str) -> str:
    return f"_sf_{prefix}_{uuid.uuid4().hex[:10]}"


# -- CSV ---------------------------------------------------------------------------------
def _csv_encoding(source: SourceSettings, head: bytes, label: str) -> str:
    """The Python codec of a text file: the ``encoding`` option, or UTF-16 by its byte-order
    mark, else UTF-8 (a UTF-8 byte-order mark is skipped)."""
    stated = source.options.get("encoding")
    if stated is None:
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        stated = "utf-8"
    enc = str(stated).strip().lower().replace("_", "-")
    try:
        name = codecs.lookup(enc).name
    except LookupError as exc:
        raise InputError(f"unknown encoding {stated!r} (options.encoding); use e.g. utf-8, "
                         "windows-1252, latin-1 or utf-16", file=label) from exc
    return "utf-8-sig" if name == "utf-8" else name


def _csv_header(path: Path, source: SourceSettings,
                label: str) -> tuple[list[str], str, str, str, Layout]:
    """The columns (the header, the first record, read with Python's csv module; or
    ``options.names``), the delimiter (sniffed unless given), quote, encoding and layout."""
    shape = layout(source, label)
    head = head_bytes(path)
    if not head:
        raise InputError("the file is empty (0 bytes)" + ("; expected a header row" if shape.header
                                                          else ""), file=label)
    encoding = _csv_encoding(source, head, label)
    if not encoding.startswith("utf-16"):
        _refuse_binary(head, label)
    text = head.decode(encoding, errors="replace")
    hint = re.match(r"\ufeff?sep=(.)[ \t]*\r?\n", text)
    if hint:  # Excel writes it above the header of a CSV meant for a locale's separator
        raise InputError(f"line 1 is Excel's separator hint {hint.group(0).strip()!r}, not a "
                         f"header: delete that line (and set options.delimiter = "
                         f"{hint.group(1)!r})", file=label, row=0)
    if shape.whitespace:
        header = list(shape.names) if shape.names else header_names(whitespace_header(text), label)
        delimiter, quote = WHITESPACE, ""
    else:
        header, delimiter, quote = _delimited_header(text, source, shape, label)
    if shape.names:
        return header, delimiter, quote, encoding, shape
    if not header:
        raise InputError("the first row is empty; expected a header row (a file without one: "
                         "set options.header = false and options.names)", file=label, row=0)
    refuse_repeated_names(header, label, trimmed=True)
    if "_row" in {h.lower() for h in header}:
        raise InputError("a column named _row is reserved", file=label, row=0, column="_row")
    return header, delimiter, quote, encoding, shape


def _refuse_binary(head: bytes, label: str) -> None:
    """InputError when the file's first bytes are UTF-16 text without a byte-order mark or
    binary data (:mod:`segflow.sources._binary`); a text file with a few stray NUL bytes
    passes (the careful reader reads it, :func:`prescan`)."""
    order = utf16_order(head)
    if order is not None:
        raise InputError("the file looks like UTF-16 text without a byte-order mark; set "
                         f"options.encoding = '{order}'", file=label)
    kind = binary_kind(head)
    if kind is not None:
        what = "NUL or other control bytes" if kind == "binary data" else kind
        raise BinaryFileError(f"the file holds binary data ({what}), not delimited text; is "
                              "it really a CSV?", file=label)


def _delimited_header(text: str, source: SourceSettings, shape: Layout,
                      label: str) -> tuple[list[str], str, str]:
    """The header of a delimited file (``[]`` when it is blank; ``options.names`` without
    one), its delimiter (sniffed from the first 20 lines unless given) and quote."""
    quote = str(source.options.get("quote", '"'))
    delimiter = source.options.get("delimiter")
    if delimiter is None:
        delimiter = _sniff(text)
    delimiter = "\t" if delimiter in ("\\t", "tab") else str(delimiter)
    if shape.names:
        return list(shape.names), delimiter, quote
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                        quotechar=quote or None, quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE)
    try:
        written = next(reader, [])
    except csv.Error as exc:
        raise InputError(f"cannot read the header row: {exc}", file=label, row=0) from exc
    header = header_names(written, label)
    if not header or all(h == "" for h in header):
        return [], delimiter, quote
    while header[-1] == "":  # Excel's padding past the last named column (docs/data.md)
        header.pop()
    blanks = [i + 1 for i, h in enumerate(header) if h == ""]
    if blanks:
        hint = ("; fields aligned by runs of spaces? set options.delimiter = 'whitespace'"
                if delimiter == " " else "")
        raise InputError(
            f"header has empty column names at positions {blanks}{hint}", file=label, row=0
        )
    refuse_repeated_names(written[:len(header)], label, trimmed=True)  # as written: 'a' / 'a '
    return header, delimiter, quote


def _sniff(text: str) -> str:
    """The delimiter of a file's first 20 lines, one of ``, ; tab |``: Python's sniffer, or,
    when it cannot decide (rows of several field counts, as a file with malformed rows has),
    the one written most often on the first line (``,`` when none is)."""
    lines = text.splitlines()[:20]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in ",;\t|"} if lines else {}
        best = max(counts, key=lambda d: counts[d], default=",")  # ties: the first
        return best if counts.get(best) else ","


def _stage_csv_duckdb(con, path: Path, header: list[str], delimiter: str, quote: str,
                      label: str, limit: int | None, skip: int = 1) -> Staged:
    """DuckDB's CSV reader, for simple files only (see :func:`prescan`): one record per line
    after the header (``skip`` lines: 1, or 0 without one), so rejects (DuckDB's line) and
    rows (rowid of ``raw``, kept in file order by :func:`in_file_order`, plus the rejects
    before) are numbered exactly."""
    escape = quote
    buffer, max_line = csv_buffer_sizes(con)
    raw, rej, stg = _tmp("raw"), _tmp("rej"), _tmp("stg")
    cols = "{" + ", ".join(f"{lit(h)}: 'VARCHAR'" for h in header) + "}"
    args = (
        f"header={'true' if skip else 'false'}, auto_detect=false, columns={cols}, delim={lit(delimiter)}, "
        f"quote={lit(quote)}, escape={lit(escape)}, encoding='utf-8', "
        f"store_rejects=true, rejects_table={lit(rej)}, rejects_scan={lit(rej + '_scan')}, "
        f"max_line_size={max_line}, buffer_size={buffer}, strict_mode=true"
    )
    lim = f" LIMIT {int(limit)}" if limit else ""
    try:
        con.execute(f"CREATE TEMP TABLE {raw} AS SELECT * FROM read_csv({lit(str(path))}, {args}){lim}")
    except duckdb.Error as exc:
        raise InputError(f"cannot read as CSV: {exc}".splitlines()[0], file=label) from exc
    # Data row number of each reject (the physical line minus the header line).
    rejects = _tmp("rjt")
    con.execute(
        f"""CREATE TEMP TABLE {rejects} AS
        SELECT CAST(line AS BIGINT) - {skip} AS _row, any_value(csv_line) AS raw_row,
               string_agg(DISTINCT CAST(error_type AS VARCHAR) || ': ' || error_message, '; ')
                   AS reason,
               min(column_name) AS column_name
        FROM {rej} WHERE line > {skip} {f'AND line <= {int(limit) + skip}' if limit else ''}
        GROUP BY line"""  # one line can carry several errors
    )
    if not con.execute(f"SELECT count(*) FROM {rejects}").fetchone()[0]:
        for t in (rej, rej + "_scan"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        staged = _number_rows(con, raw, label)
        staged.columns = {h: "VARCHAR" for h in header}
        staged.rejects = rejects
        staged.temp_tables.append(rejects)
        return staged
    # Accepted row a (1-based, in file order) sits after every reject j with
    # q_j - j <= a - 1, where q_j is the j-th reject's row number.
    con.execute(
        f"""CREATE TEMP TABLE {stg} AS
        WITH r AS (SELECT _row - row_number() OVER (ORDER BY _row) AS acc_before,
                          row_number() OVER (ORDER BY _row) AS n FROM {rejects}),
             k AS (SELECT acc_before, max(n) AS n FROM r GROUP BY acc_before),
             s AS (SELECT rowid - (SELECT min(rowid) FROM {raw}) AS _rid, * FROM {raw})
        SELECT s._rid + 1 + coalesce(k.n, 0) AS _row, s.* EXCLUDE (_rid)
        FROM s ASOF LEFT JOIN k ON s._rid >= k.acc_before"""
    )
    con.execute(f"DROP TABLE {raw}")
    for t in (rej, rej + "_scan"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return Staged(stg, {h: "VARCHAR" for h in header}, label, rejects, [stg, rejects])


def _stage_csv(con, path: Path, source: SourceSettings, label: str, limit: int | None) -> Staged:
    """Stage a CSV file.

    A simple UTF-8 file (no blank line, CR-only line end or NUL byte; see :func:`prescan`) is
    read by DuckDB's fast reader, and its rows plus rejects must equal the file's lines after
    the header (each line one record); otherwise (or when they do not) the careful reader
    :func:`segflow.sources._csvread.read_csv_file` reads it. A file without a header line
    (``options.header = false``) has ``options.names`` for columns and every line is data; a
    ``delimiter = "whitespace"`` file is split by :mod:`segflow.sources._textlines`.
    """
    header, delimiter, quote, encoding, shape = _csv_header(path, source, label)
    skip, named = shape.skip, not shape.header
    escape = str(source.options.get("escape", quote))
    plain = (encoding == "utf-8-sig" and escape == quote and not limit
             and path.suffix.lower() not in COMPRESSED)
    if shape.whitespace:
        rows, rejects, tally = stage_lines(con, path, header, skip, encoding, label, limit,
                                           plain, _tmp)
        return Staged(rows, {h: "VARCHAR" for h in header}, label, rejects, [rows, rejects],
                      tally=tally)
    if plain:
        scan = prescan(path)
        staged = None
        if scan.simple:
            try:
                staged = _stage_csv_duckdb(con, path, header, delimiter, quote, label, None,
                                           skip=skip)
            except InputError:  # DuckDB gave up (e.g. a runaway quote): the careful reader
                staged = None
        if staged is not None:
            n = con.execute(f"SELECT count(*) FROM {staged.table}").fetchone()[0]
            # a line of only spaces or tabs is a blank line (as in the careful reader)
            blank = con.execute(f"SELECT count(*) FROM {staged.rejects} "
                                r"WHERE regexp_matches(raw_row, '^\s*$')").fetchone()[0]
            if blank:
                con.execute(rf"DELETE FROM {staged.rejects} WHERE regexp_matches(raw_row, '^\s*$')")
            n_rej, longest = con.execute(
                f"SELECT count(*), coalesce(max(length(raw_row)), 0) FROM {staged.rejects}"
            ).fetchone()
            # DuckDB cuts a reject's text at 10,000 characters: such files take the careful path
            if n + n_rej + blank == scan.lines - skip and longest < 9_999:
                reword_rejects(con, staged.rejects, len(header), delimiter, quote, named=named)
                staged.tally = CsvTally(scan.size, scan.size, scan.lines, skip, blank,
                                        scan.lines - skip - blank, n + n_rej, scan.digest)
                return staged
            staged.drop(con)  # the counts disagree: read it again, carefully
    stg, rejects = _tmp("stg"), _tmp("rjt")
    cols = ", ".join(f"{q(h)} VARCHAR" for h in header)
    con.execute(f"CREATE TEMP TABLE {stg} (_row BIGINT, {cols})")
    con.execute(f"CREATE TEMP TABLE {rejects} (_row BIGINT, raw_row VARCHAR, reason VARCHAR, "
                "column_name VARCHAR)")
    staged = Staged(stg, {h: "VARCHAR" for h in header}, label, rejects, [stg, rejects])
    try:
        staged.tally = read_csv_file(
            con, path, label, header=header, delimiter=delimiter, quote=quote, escape=escape,
            encoding=encoding, rows_table=stg, rejects_table=rejects, limit=limit, skip=skip)
    except BaseException:
        staged.drop(con)
        raise
    return staged


# -- other formats -----------------------------------------------------------------------
def _columns_of(con, table: str) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE {table}").fetchall()
    return {r[0]: r[1] for r in rows if r[0] != "_row"}


def in_file_order(con: duckdb.DuckDBPyConnection) -> None:
    """Keep the rows of a file in the file's order in this session's reads: a staged row's
    number is the rowid of the table its scan was copied into, which DuckDB keeps in scan
    order, even when threads read parts of the file, while ``preserve_insertion_order`` is
    on (its "Order Preservation" doc). A connection may turn it off (a memory saving): then
    a 2-thread read of a 9 MB file misnumbered all its 50,000 rows (test_sources_row_numbers).
    ``row_number() OVER ()`` in the scan streams the read through one thread (1.4x slower)."""
    con.execute("SET SESSION preserve_insertion_order = true")


def _number_rows(con, raw: str, label: str) -> Staged:
    """A view numbering the rows of ``raw`` (no copy of the data)."""
    stg = _tmp("stg")
    # rowids follow insertion order (in_file_order); inside a transaction they start at a
    # large offset.
    con.execute(f"CREATE TEMP VIEW {stg} AS SELECT rowid - (SELECT min(rowid) FROM {raw}) + 1 "
                f"AS _row, * FROM {raw}")
    return Staged(stg, _columns_of(con, stg), label, None, [raw], [stg])


def _scan(con, sql: str, label: str, what: str) -> str:
    raw = _tmp("raw")
    try:
        con.execute(f"CREATE TEMP TABLE {raw} AS {sql}")
    except duckdb.Error as exc:
        raise InputError(f"cannot read as {what}: {str(exc).splitlines()[0]}", file=label) from exc
    return raw


def scan_arrow(con, data: Any, prefix: str, label: str, what: str) -> str:
    """:func:`_scan` of an Arrow table or record-batch reader ``data``: registered on ``con``
    under a temporary name (``prefix``) for the copy, then unregistered (also on error)."""
    view = _tmp(prefix)
    con.register(view, data)
    try:
        return _scan(con, f"SELECT * FROM {view}", label, what)
    finally:
        con.unregister(view)


def _stage_parquet(con, path: Path, label: str, limit: int | None) -> Staged:
    """A view over the Parquet file itself: no copy (the file is re-read where needed)."""
    lim = f" WHERE file_row_number < {int(limit)}" if limit else ""
    try:  # DuckDB renames a repeated name (amount, amount_1): judge the file's own names
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
    except Exception:  # not Parquet: DuckDB's error below says so
        names = []
    refuse_repeated_names(names, label, row=None)
    stg = _tmp("stg")
    try:
        con.execute(
            f"CREATE TEMP VIEW {stg} AS SELECT file_row_number + 1 AS _row, * EXCLUDE "
            f"(file_row_number) FROM read_parquet({lit(str(path))}, file_row_number = true){lim}")
        columns = _columns_of(con, stg)
    except duckdb.Error as exc:  # not a Parquet file (its footer unreadable): refused whole
        con.execute(f"DROP VIEW IF EXISTS {stg}")
        raise BinaryFileError(f"cannot read as Parquet: {str(exc).splitlines()[0]}",
                              file=label) from exc
    if "file_row_number" in columns:
        raise InputError("a column named file_row_number is reserved", file=label)
    nested = [c for c, t in columns.items() if _is_nested(t)]
    if nested:  # lists, structs, maps: kept as JSON text (a mapped one is quarantined later)
        flat = _tmp("stg")
        swap = ", ".join(f"CAST(to_json({q(c)}) AS VARCHAR) AS {q(c)}" for c in nested)
        con.execute(f"CREATE TEMP VIEW {flat} AS SELECT * REPLACE ({swap}) FROM {stg}")
        return Staged(flat, {c: ("VARCHAR" if c in nested else t) for c, t in columns.items()},
                      label, None, [], [flat, stg], nested=nested)
    return Staged(stg, columns, label, None, [], [stg])


def refuse_nested(con: duckdb.DuckDBPyConnection, staged: Staged, used: list[str]) -> None:
    """A one-line error when a mapped column holds lists or structures (Parquet)."""
    for col in staged.nested:
        if any(col in label.split("+") for label in used):
            row = con.execute(f"SELECT min(_row) FROM {staged.table} WHERE {q(col)} IS NOT NULL "
                              "AND {q(col)} <> 'null'".replace("{q(col)}", q(col))).fetchone()[0]
            raise InputError(
                f"column {col!r} holds lists or structures, not single values; map a column "
                "of plain values (or an expression extracting one)",
                file=staged.label, row=row or 1, column=col)


def _is_nested(dtype: str) -> bool:
    up = dtype.upper()
    return up.endswith("[]") or up.endswith("]") or up.startswith(("STRUCT", "MAP", "UNION"))


def _stage_jsonl(con, path: Path, label: str, limit: int | None) -> Staged:
    """JSON lines: each line is one object; lines that are not valid JSON are rejects. A
    binary file (:func:`binary_kind`) or one without any JSON object (in its first
    ``limit`` lines) is no JSON-lines file: refused whole (:class:`BinaryFileError`)."""
    kind = binary_kind(head_bytes(path))
    if kind is not None:
        what = "NUL or other control bytes" if kind == "binary data" else kind
        raise BinaryFileError(f"the file holds binary data ({what}), not JSON lines", file=label)
    lines, rejects = _tmp("lines"), _tmp("rjt")
    con.execute(f"CREATE TEMP TABLE {lines} (_row BIGINT, line VARCHAR)")
    con.execute(f"CREATE TEMP TABLE {rejects} (_row BIGINT, raw_row VARCHAR, reason VARCHAR, "
                "column_name VARCHAR)")
    try:
        tally = read_lines(con, path, label, lines, rejects, limit=limit)
    except BaseException:
        con.execute(f"DROP TABLE {lines}")
        con.execute(f"DROP TABLE {rejects}")
        raise
    con.execute(
        f"""INSERT INTO {rejects} SELECT _row, line AS raw_row,
        'not a JSON object' AS reason, NULL::VARCHAR AS column_name FROM {lines}
        WHERE NOT coalesce(CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' END, false)"""
    )
    con.execute(f"DELETE FROM {lines} WHERE _row IN (SELECT _row FROM {rejects})")
    objs = _tmp("obj")
    con.execute(f"CREATE TEMP TABLE {objs} AS SELECT _row, CAST(line AS JSON) AS line FROM {lines}")
    con.execute(f"DROP TABLE {lines}")
    lines = objs
    keys = [
        r[0]
        for r in con.execute(
            f"""SELECT k FROM (SELECT unnest(json_keys(line)) AS k, _row FROM {lines})
            GROUP BY k ORDER BY min(_row), k"""
        ).fetchall()
    ]
    if not keys:
        con.execute(f"DROP TABLE {lines}")
        con.execute(f"DROP TABLE {rejects}")
        raise BinaryFileError("no JSON objects found; expected one object per line",
                              file=str(label))
    try:
        refuse_repeated_names(keys, label, row=None)
    except InputError:
        con.execute(f"DROP TABLE {lines}")
        con.execute(f"DROP TABLE {rejects}")
        raise
    sel = ", ".join(f"json_extract_string(line, {lit('$.' + _json_key(k))}) AS {q(k)}" for k in keys)
    stg = _tmp("stg")
    con.execute(
        f"""CREATE TEMP TABLE {stg} AS SELECT _row, {sel} FROM {lines} ORDER BY _row"""
    )
    con.execute(f"DROP TABLE {lines}")
    return Staged(stg, {k: "VARCHAR" for k in keys}, label, rejects, [stg, rejects], tally=tally)


def _json_key(key: str) -> str:
    return '"' + key.replace('"', '\\"') + '"'


def _stage_xlsx(con, path: Path, source: SourceSettings, label: str, limit: int | None) -> Staged:
    """An Excel sheet: every cell as text, plus the value of each number cell in a hidden
    column (``Staged.numbers``; see :mod:`segflow.sources._excel`)."""
    import pandas as pd

    from segflow.sources._excel import sheet_table

    sheet = source.options.get("sheet", 0)
    try:
        frame = pd.read_excel(
            path, sheet_name=sheet, dtype=object, keep_default_na=False, nrows=limit, engine="openpyxl"
        )
        # pandas renames a repeated name (amount, amount.1): judge the sheet's own header
        first = pd.read_excel(path, sheet_name=sheet, header=None, nrows=1, dtype=object,
                              keep_default_na=False, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many types (zipfile, KeyError, ValueError)
        raise InputError(f"cannot read as an Excel .xlsx workbook: {exc}", file=label) from exc
    if len(first):
        refuse_repeated_names([str(v).strip() for v in first.iloc[0] if str(v).strip()], label)
    table, numbers = sheet_table(frame)
    del frame
    raw = scan_arrow(con, table, "xl", label, "Excel")
    staged = _number_rows(con, raw, label)
    staged.columns = {c: t for c, t in staged.columns.items() if c not in numbers.values()}
    staged.numbers = numbers
    return staged


def stage(
    con: duckdb.DuckDBPyConnection,
    source: SourceSettings,
    path: Path | None,
    label: str,
    *,
    limit: int | None = None,
) -> Staged:
    """Stage one file (or the database table) of ``source`` in ``con``."""
    fmt = source_format(source, path)
    in_file_order(con)  # the row numbers of the staged rows are their places in the file
    if fmt in _FILE_FORMATS or fmt == "duckdb":
        assert path is not None
        if not path.exists():
            raise InputError("file not found", file=label)
        if path.stat().st_size == 0:
            # no file of its format (a Parquet file, a workbook or a database has bytes): in
            # a folder refused alone (binary_files), as a Parquet file cut short is
            raise BinaryFileError("the file is empty (0 bytes)", file=label)
    from segflow.sources._readers_db import stage_duckdb, stage_postgres

    readers: dict[str, Any] = {
        "csv": lambda: _stage_csv(con, path, source, label, limit),
        "parquet": lambda: _stage_parquet(con, path, label, limit),
        "jsonl": lambda: _stage_jsonl(con, path, label, limit),
        "xlsx": lambda: _stage_xlsx(con, path, source, label, limit),
        "duckdb": lambda: stage_duckdb(con, path, source, label, limit),
        "postgres": lambda: stage_postgres(con, source, label, limit),
    }
    return readers[fmt]()


def blank_file(source: SourceSettings, path: Path | None) -> bool:
    """Whether ``path`` is a text file (CSV, JSON lines; not compressed) of 0 bytes: an
    export with no rows and no header, loaded as 0 rows with a warning. (A Parquet, Excel or
    DuckDB file of 0 bytes, or a compressed file, is not a file of its format: an error.)"""
    if path is None or source_format(source, path) not in ("csv", "jsonl") or _suffix(path)[1]:
        return False
    try:
        return path.stat().st_size == 0
    except OSError:  # missing: stage() says so
        return False


def has_rows(con: duckdb.DuckDBPyConnection, staged: Staged) -> bool:
    """Whether the staged file holds any data row or any rejected line (else it is a
    header, or a Parquet schema, or a sheet's first row, without data)."""
    if con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {staged.table} LIMIT 1)").fetchone()[0]:
        return True
    return bool(staged.rejects and con.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM {staged.rejects} LIMIT 1)").fetchone()[0])
