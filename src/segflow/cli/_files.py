"""Reading a user's CSV file for the file commands, with identifier columns kept as text.

DuckDB's CSV sniffer guesses column types from the values, so an id column of digits
becomes a number: ``00123`` turns into ``123`` (and merges with a customer ``123``), a
20-digit id overflows into a DOUBLE and is written back rounded. Every file command
(``clv fit/score``, ``segment cluster/profile --input``, ``campaign ... --responses``)
reads its CSV through :func:`read_user_csv`, which reads the identifier columns as VARCHAR;
the other columns keep the sniffed types. The ids are then the text the ingest stores
(:func:`canonical_ids`, the rule of :mod:`segflow.sources._ids`): `` A``, ``A `` and ``A``
followed by a tab are one customer ``A`` in a file command as in a project.

As ingest, the customer-file commands (``segment cluster/profile --input``, ``campaign
... --responses/--customers``) read the missing-value tokens of ingest's default
``null_values`` (``NA``, ``N/A``, ``#N/A``, ``null``, ``NULL``, ``\\N``, ``None``, ``-``;
compared after trimming, case-sensitive) and blank cells as missing values, in every column
(``null_values=null_tokens()``): a column of numbers with an ``NA`` stays numeric. A header
naming a column twice (compared ignoring case and surrounding white space: ``spend`` and
``spend ``) is refused in every file command, as ingest refuses it (after trimming its
header), instead of reading the second as ``spend_1``. Column names are read trimmed.
Excel-safe text (``="00123"``) is read as the text between its quotes, as ingest reads it
(:mod:`segflow.cli._excel_text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: camelCase identifiers: ``CustomerID``, ``customerId`` (but not ``paid`` or ``valid``).
_ID_CAMEL = re.compile(r"^.*[a-z](?:ID|Id)$")


def is_id_column(name: str) -> bool:
    """Whether a column name marks an identifier: ``id``, ``customer_id``, ``customer id``,
    ``customer-id``, ``CustomerID``, ``customerId`` (whatever its values look like)."""
    low = name.strip().lower()
    return low == "id" or bool(re.search(r"[_ .\-]id$", low)) or bool(_ID_CAMEL.match(name.strip()))


def reader_error(exc: BaseException) -> str:
    """A file reader's error as one line: its first line, and for a file that is not UTF-8
    (DuckDB says so further down) what to do about it."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    if "not utf-8 encoded" in text.lower() or "invalid unicode" in text.lower():
        return (f"{first}: the file is not UTF-8 (a spreadsheet's 'CSV UTF-8' export, or "
                "iconv -f latin1 -t utf-8, converts it)")
    return first


def read_user_csv(
    con: Any,
    path: Path | str,
    *,
    id_columns: Iterable[str] = (),
    table_name: str | None = None,
    all_varchar: bool = False,
    null_values: Iterable[str] = (),
) -> Any:
    """A delimited text file as an Ibis table on the DuckDB backend ``con``.

    ``id_columns`` (those present in the file) and every column whose name marks an
    identifier (:func:`is_id_column`) are read as text exactly as written (leading zeros,
    long digit strings, letters); the other columns are typed by DuckDB's sniffer, or all
    read as text with ``all_varchar``. The delimiter is sniffed. The missing-value tokens
    ``null_values`` (e.g. :func:`null_tokens`; compared after trimming) are NULL in every
    column, as an empty cell; a repeated column name (compared ignoring case and surrounding
    white space: DuckDB reads ``spend`` and ``spend `` as ``spend`` and ``spend_1``) is an
    :class:`segflow.InputError` naming the file and both columns. Column names are trimmed. Other errors are the reader's
    (``duckdb.Error``); callers turn them into a one-line :class:`segflow.InputError`.
    """
    from segflow.sources._names import refuse_repeated_names
    from segflow.sources._readers import header_names

    path = str(path)
    if Path(path).stat().st_size == 0:  # DuckDB reads it as one column 'column0'
        from segflow.errors import InputError

        raise InputError("the file is empty (0 bytes: no header, no rows)", file=path)
    _refuse_not_text(path)
    # DuckDB's strict parser fails on a file mixing line ends (CRLF and LF: exports joined
    # together); its lenient one reads them, and the count check below proves it lost nothing
    lenient: dict[str, Any] = {}
    try:
        header = con.read_csv(path, all_varchar=True).columns
    except Exception:  # duckdb.Error (imported lazily by the callers' backend)
        if not _mixed_line_ends(path):
            _refuse_bare_cr(path)  # "Error when sniffing file", which names no line
            raise
        lenient = {"strict_mode": False}
        header = con.read_csv(path, all_varchar=True, **lenient).columns
    kwargs: dict[str, Any] = {"all_varchar": True, **lenient} if all_varchar else dict(lenient)
    tokens = tuple(null_values)
    if tokens:  # the exact tokens here, so that a column of numbers is typed as numbers
        kwargs["nullstr"] = ["", *tokens]
    delim, names = _header_of(path)
    named = unpadded(names)  # empty names at the header's end are Excel's padding
    # DuckDB trims the names ('spend ' is 'spend'), so a repeat after trimming would be
    # read as 'spend_1': compared trimmed, as ingest trims its header before the same test
    refuse_repeated_names(names[:len(named)] if delim is not None or names
                          else _declared_header(path), path, trimmed=True)
    if delim is not None and list(header) != named:
        # the sniffer misread the file (one column, or another line taken for the header):
        # it does so when some lines do not split like the others (or pads them: Excel's
        # empty fields past the last column, read as ingest reads them); name the first bad one
        _refuse_bad_line(path, delim, len(named))
        kwargs.update(delim=delim, header=True, null_padding=True)
        header = con.read_csv(path, all_varchar=True, delim=delim, header=True,
                              null_padding=True, **lenient).columns[:len(named)]
    clean = header_names(list(header), path)  # 'amount<NUL>' is 'amount', as in ingest
    if clean != list(header):
        kwargs["names"] = header = clean
    wanted = set(id_columns)
    text = {c: "VARCHAR" for c in header if c in wanted or is_id_column(c)}
    if text and not all_varchar:
        kwargs["types"] = text
    if table_name is not None:
        kwargs["table_name"] = table_name
    ids = [c for c in header if c in wanted or is_id_column(c)]
    table = con.read_csv(path, **kwargs)
    if len(table.columns) > len(header):  # the padding columns (empty: _refuse_bad_line)
        table = table.select(*header)
    if not all_varchar:  # (all as written: the callers that show a cell as written)
        from segflow.cli._excel_text import read_excel_text

        table = read_excel_text(table, path, ids)
    if tokens:
        table = without_tokens(table, tokens, ids, retype=not all_varchar)
    table = canonical_ids(table, ids)
    if lenient:
        _check_records(path, delim or ",", table.count().execute())
    return table


def _refuse_not_text(path: str) -> None:
    """Refuse a file given as CSV that is not UTF-8 text, from its first 64 KiB, with what to
    do: UTF-16 text (a byte-order mark, or every other byte NUL: a spreadsheet's "Unicode
    text"), a known binary format (gzip, zip, Parquet...) or other binary data (many NUL or
    control bytes), by the rule ingest applies (:mod:`segflow.sources._binary`): a text file
    with a few stray NUL bytes is read, as ingest reads it. DuckDB's own message for these
    was ``Error when sniffing file`` or an unterminated quote, without advice. Latin-1 text
    is left to DuckDB's reader, whose error :func:`reader_error` explains."""
    from segflow.errors import InputError
    from segflow.sources._binary import SNIFF_BYTES, binary_kind, utf16_order

    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    todo = ("save it as CSV UTF-8 (a spreadsheet's 'CSV UTF-8' export), or give a .parquet or "
            ".xlsx file under its own extension")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or utf16_order(head):
        raise InputError("not a UTF-8 CSV file: it is UTF-16 text (a spreadsheet's 'Unicode "
                         f"text'); convert it (iconv -f utf-16 -t utf-8) or {todo}", file=path)
    kind = binary_kind(head)
    if kind is not None:
        raise InputError(f"not a UTF-8 CSV file: it is {kind}; {todo}", file=path)


def null_tokens() -> tuple[str, ...]:
    """The missing-value tokens of ingest's default ``null_values`` (docs/data.md)."""
    from segflow.config._sources import DEFAULT_NULL_VALUES

    return tuple(DEFAULT_NULL_VALUES)


def without_tokens(table: Any, tokens: Iterable[str], skip: Iterable[str] = (), *,
                   retype: bool = False) -> Any:
    """``table`` (Ibis) with the text cells that are one of ``tokens`` once trimmed
    (`` NA``, ``null ``), or blank (only spaces: ingest's "an empty or blank value is always
    missing"), set to NULL, in every text column but ``skip`` (the id columns, which
    :func:`canonical_ids` trims). The reader's ``nullstr`` already caught the exact
    tokens; this catches the padded ones, as ingest compares after trimming. With
    ``retype``, a column that held such a token and otherwise only numbers is read as
    numbers (float64), as it would have been had the token been written exactly (one query
    over the text columns; none when there are none)."""
    import ibis

    skipped = set(skip)
    text = [c for c in table.columns if c not in skipped and table[c].type().is_string()]
    if not text:
        return table
    tokens = [t for t in tokens if t]
    hit = {c: table[c].strip().isin([*tokens, ""]) for c in text}
    out = table.mutate(**{c: ibis.ifelse(hit[c], ibis.null("string"), table[c]) for c in text})
    if not retype:
        return out
    probe = {}
    for i, c in enumerate(text):
        probe[f"t{i}"] = hit[c].cast("int64").sum()
        text_cell = table[c].notnull() & ~hit[c] & table[c].strip().try_cast("float64").isnull()
        probe[f"x{i}"] = text_cell.cast("int64").sum()
    got = table.aggregate(**probe).execute().iloc[0]
    numeric = [c for i, c in enumerate(text) if int(got[f"t{i}"] or 0) and not int(got[f"x{i}"] or 0)]
    return out.mutate(**{c: out[c].strip().try_cast("float64") for c in numeric}) if numeric else out


def read_user_parquet(con: Any, path: Path | str, *, table_name: str | None = None) -> Any:
    """A Parquet file as an Ibis table on ``con``; a column name the file repeats (compared
    ignoring case and surrounding white space) is an :class:`segflow.InputError` naming the
    file (DuckDB would read the second as ``x_1``). Names are trimmed (`` spend`` is
    ``spend``), as DuckDB trims a CSV header. Its columns are typed: text cells are kept as
    written."""
    import pyarrow.parquet as pq

    from segflow.sources._names import refuse_repeated_names

    refuse_repeated_names(list(pq.read_schema(str(path)).names), str(path), trimmed=True)
    kwargs = {"table_name": table_name} if table_name is not None else {}
    table = con.read_parquet(str(path), **kwargs)
    padded = {c.strip(): c for c in table.columns if c.strip() and c.strip() != c}
    return table.rename(padded) if padded else table


def canonical_ids(table: Any, columns: Iterable[str]) -> Any:
    """``table`` (Ibis) with its text id ``columns`` as the ingest stores ids
    (:mod:`segflow.sources._ids`): invisible characters (zero-width spaces, direction marks,
    byte-order marks) removed, a no-break space read as a space, control characters and
    spaces trimmed at both ends, an empty id missing. Columns of other types, and names the
    table lacks, are left as they are."""
    from segflow.sources._ids import _INVISIBLE, _TRIM_CLASS

    text = [c for c in dict.fromkeys(columns) if c in table.columns and table[c].type().is_string()]
    if not text:
        return table
    edge = f"^{_TRIM_CLASS}+|{_TRIM_CLASS}+$"

    def clean(v: Any) -> Any:
        v = v.re_replace(_INVISIBLE, "").replace("\u00a0", " ").re_replace(edge, "")
        return v.nullif("")

    return table.mutate(**{c: clean(table[c]) for c in text})


def _mixed_line_ends(path: str) -> bool:
    """Whether the file ends some lines with CRLF and others with a bare LF or CR."""
    crlf = lf = cr = 0
    last = b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crlf += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            lf, cr, last = lf + chunk.count(b"\n"), cr + chunk.count(b"\r"), chunk[-1:]
    return crlf > 0 and (lf > crlf or cr > crlf)


def _refuse_bare_cr(path: str) -> None:
    """An InputError naming the row and column of the first carriage return (CR) alone inside
    an unquoted field of a file whose lines end with LF (a spreadsheet cell's line break);
    nothing when there is none. DuckDB's sniffer fails on such a file with "Error when sniffing
    file", which names no row. Rows count as :func:`segflow.errors.where` writes them (0: the
    header); a line break inside a quoted field is part of its record."""
    from segflow.errors import InputError

    delim, names = _header_of(path)
    delim = delim or ","
    row = field = 0
    quoted, at_start, prev, cr = False, True, "", False
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        while chunk := f.read(1 << 20):
            for c in chunk:
                if cr and c != "\n":  # the CR before was alone, outside quotes
                    break
                cr = False
                if c == '"' and (quoted or at_start or prev == '"'):
                    quoted, at_start = not quoted, False
                elif quoted:
                    pass
                elif c == delim:
                    field, at_start = field + 1, True
                elif c == "\n":
                    row, field, at_start = row + 1, 0, True
                elif c == "\r":
                    cr = True
                else:
                    at_start = False
                prev = c
            else:
                continue
            break
    if not cr:
        return
    raise InputError("a carriage return (CR) inside an unquoted field, where the lines end with "
                     "LF (a line break in a spreadsheet cell): put the field in double quotes or "
                     "remove the character", file=path, row=row,
                     column=names[field] if field < len(names) else None)


def _check_records(path: str, delim: str, rows: int) -> None:
    """InputError unless the file holds ``rows`` data records, counted with Python's csv
    module (the lenient DuckDB reader could otherwise join or split records silently)."""
    import csv

    from segflow.errors import InputError

    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        records = sum(1 for record in csv.reader(f, delimiter=delim) if record) - 1
    if records != rows:
        raise InputError(f"the file mixes line ends (CRLF and LF) and reads as {rows} rows where "
                         f"it holds {records} records; save it with one kind of line end",
                         file=path)


def unpadded(names: list[str]) -> list[str]:
    """The column names of a header, trimmed, without the empty names at its end (Excel's
    padding past the last named column; docs/data.md, *Reading files*)."""
    out = [n.strip() for n in names]
    while out and out[-1] == "":
        out.pop()
    return out


def _refuse_bad_line(path: str, delim: str, width: int) -> None:
    """Raise InputError naming the first record of ``path`` whose number of fields is not
    the header's ``width`` named columns (an unquoted delimiter inside a value such as
    ``1.234,5``, or a quote left open), read with Python's csv module; nothing when every
    record splits like the header. Empty fields past the last named column are padding and
    ignored (``a,b,c,,``), by ingest's rule (:func:`~segflow.sources._csvread.drop_padding`);
    a non-empty one is counted with all the others."""
    import csv

    from segflow.errors import InputError
    from segflow.sources._csvread import drop_padding

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter=delim, strict=True)
        header, line = True, 1
        try:
            for record in reader:
                drop_padding(record, width)
                if header:
                    header = False
                elif record and len(record) != width:
                    raise InputError(
                        f"line {line} has {len(record)} fields where the header has {width} "
                        f"(a {'tab' if delim == chr(9) else repr(delim)} inside a value that "
                        "is not quoted, or a quote left open?); fix the line or quote the value",
                        file=path)
                line = reader.line_num + 1
        except csv.Error as exc:
            raise InputError(f"the record from line {line} does not parse ({exc}): a quote "
                             "left open?", file=path) from None


def _declared_header(path: str) -> list[str]:
    """The column names of a file that starts with Excel's ``sep=;`` line: those of its
    second line, split by the declared delimiter."""
    import csv

    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        declared = f.readline().rstrip("\r\n")[4:5] or ","
        return next(csv.reader([f.readline().rstrip("\r\n")], delimiter=declared), [])


def _header_of(path: str) -> tuple[str | None, list[str]]:
    """The delimiter of the file's first line (the most frequent of ``,``, ``;``, tab and
    ``|``; None when it has none) and the column names it gives."""
    import csv

    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        first = f.readline().rstrip("\r\n")
    if first.lower().startswith("sep="):  # Excel's delimiter line: DuckDB reads it itself
        return None, []
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    delim = max(counts, key=lambda d: counts[d])
    if not counts[delim]:
        return None, [first]
    return delim, next(csv.reader([first], delimiter=delim))
