"""The one CSV writer of segflow: every CSV file segflow writes goes through :func:`write_csv`.

Spreadsheet programs run a cell as a formula when its text starts with ``=``, ``+``, ``-``,
``@``, a tab, a carriage return or a line feed (OWASP, "CSV injection"; OWASP ASVS 5.0
1.2.10 adds the NUL character). The same signs count after leading invisible characters,
white space (`` =1+1``) and format characters (a zero-width space, a byte-order mark, a word
joiner, direction marks, a soft hyphen: programs that drop them on import would see the
sign first; an apostrophe costs nothing on such a value), and in the full-width and small
forms some programs fold to (``＝``, ``﹢``).
:func:`neutralise_formulas` prefixes such text cells (and :func:`write_csv` such column
names) with a single quote, so the spreadsheet shows the text instead of running it.
Numeric columns are never changed. Text that is only number-like (:data:`NUMBER_LIKE`: an
optional leading ``+`` or ``-``, then digits, spaces, dots, dashes and parentheses, with a
digit: ``-12.5``, ``+44 7700 900123``, ``+1 (555) 010-0100``) is not changed either: an E.164
phone number written ``'+44 7700 900123`` breaks every CRM or ad-platform upload of the file.
Such text holds no letter, so no function (``HYPERLINK``, ``WEBSERVICE``), no cell or sheet
reference and no DDE call (``cmd|' /C calc'!A0``): OWASP's CSV-injection attacks
(https://owasp.org/www-community/attacks/CSV_Injection) all need one. At worst a spreadsheet
computes it (``-2-3`` shows ``-5``), which a quote would only hide. Anything else after the
sign is guarded as before, ``+`` or any other operator after the first character included
(``-2+3``, ``-2+3+cmd|' /C calc'!A0``, ``+1*2``): a value with an operator besides the minus
of a phone number's dashes is no number a CRM would take, and ``-2+3`` is exactly how
OWASP's example payloads start.

The guard belongs to spreadsheet-like text files only: :func:`write_csv` (CSV, TSV) is its
one caller. Parquet files, JSON answers and database tables hold every value as it is (a
reader of them gets ``=evil`` back, not ``'=evil``); segflow writes no XLSX.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

#: First characters that make a spreadsheet treat a cell as a formula (OWASP's list, and
#: NUL from OWASP ASVS 5.0 1.2.10).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\x00")
#: Text a spreadsheet cannot run as anything but arithmetic of numbers (RE2): an optional
#: leading ``+`` or ``-``, then digits, spaces, dots, dashes and parentheses, at least one
#: digit. A signed number or a phone number: written as it is (see the module's notes).
NUMBER_LIKE = r"^[+\-]?[0-9 .()\-]*[0-9][0-9 .()\-]*$"
#: The same signs after leading invisible characters, once folded by NFKC (``＝`` and ``﹦``
#: are ``=``).
_SIGNS = ("=", "+", "-", "@")
#: Invisible characters skipped before a sign (RE2 class, for Arrow and DuckDB alike):
#: Unicode white space (controls 9-13 and 28-31, U+0085, the separators Z) and the format
#: characters Cf (zero-width space and joiners, direction marks, word joiner, byte-order
#: mark, soft hyphen...).
INVISIBLE_LEAD = r"[\t\n\x{0b}\f\r\x{1c}-\x{1f}\x{85}\p{Z}\p{Cf}]"


def _starts(col: pa.ChunkedArray | pa.Array, prefixes: tuple[str, ...]) -> pa.ChunkedArray | pa.Array:
    starts = pc.starts_with(col, prefixes[0])
    for prefix in prefixes[1:]:
        starts = pc.or_(starts, pc.starts_with(col, prefix))
    return starts


def formula_cells(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Whether each text cell of ``col`` (a string array) would be run as a formula: it
    starts with one of :data:`FORMULA_PREFIXES`, or with one of ``= + - @`` after leading
    invisible characters (:data:`INVISIBLE_LEAD`) and NFKC folding (full-width and small
    forms), and is not only number-like (:data:`NUMBER_LIKE`: ``+44 7700 900123``, ``-12.5``
    are False); False for nulls."""
    import numpy as np

    risky = pc.fill_null(_starts(col, FORMULA_PREFIXES), False)
    if pc.any(risky).as_py():
        number = pc.fill_null(pc.match_substring_regex(col, NUMBER_LIKE), False)
        risky = pc.and_(risky, pc.invert(number))
    # a cell starting with a visible ASCII character is decided by its first character; the
    # others (white space, format characters, any non-ASCII letter) are looked at closer
    first = pc.utf8_slice_codeunits(col, 0, 1)
    plain = pc.and_(pc.greater_equal(first, "!"), pc.less_equal(first, "~"))
    closer = pc.indices_nonzero(pc.invert(pc.fill_null(plain, True)))
    if not len(closer):
        return risky
    sub = pc.take(col, closer)
    visible = pc.replace_substring_regex(sub, "^" + INVISIBLE_LEAD + "+", "", max_replacements=1)
    # only the first character after the invisible ones matters: fold two, not the whole text
    folded = pc.utf8_normalize(pc.utf8_slice_codeunits(visible, 0, 2), form="NFKC")
    out = np.asarray(risky.to_numpy(zero_copy_only=False), dtype=bool).copy()
    out[np.asarray(closer)] |= np.asarray(pc.fill_null(_starts(folded, _SIGNS), False)
                                          .to_numpy(zero_copy_only=False), dtype=bool)
    return pa.array(out)


def safe_name(name: str) -> str:
    """A column name as :func:`write_csv` writes it in the header row (``'`` before a
    formula)."""
    risky = formula_cells(pa.array([name], pa.string()))[0].as_py()
    return "'" + name if risky else name


def neutralise_formulas(table: pa.Table) -> pa.Table:
    """Prefix ``'`` to text cells a spreadsheet would run as a formula.

    Parameters
    ----------
    table : pyarrow.Table
        Any table; only text columns (string, large string, string view, and
        dictionary-encoded string or large string, such as a pandas categorical) are changed.

    Returns
    -------
    pyarrow.Table
        The same columns; risky text cells start with ``'``.

    Examples
    --------
    >>> t = pa.table({"a": ["=1+1", "-12.5", "-1+cmd|' /C calc'!A0", "+44 7700 900123", "ok"],
    ...               "n": [1, 2, 3, 4, 5]})
    >>> neutralise_formulas(t).column("a").to_pylist()
    ["'=1+1", '-12.5', "'-1+cmd|' /C calc'!A0", '+44 7700 900123', 'ok']
    """
    columns = []
    for name in table.column_names:
        col = table[name]
        if pa.types.is_dictionary(col.type) and (pa.types.is_string(col.type.value_type)
                                                 or pa.types.is_large_string(col.type.value_type)):
            # any text dictionary: pandas 3 turns a categorical of text into large strings
            # (dictionary<large_string>), which went out unguarded
            col = col.cast(pa.string())
        if pa.types.is_large_string(col.type) or pa.types.is_string_view(col.type):
            col = col.cast(pa.string())
        if pa.types.is_string(col.type):
            col = pc.if_else(formula_cells(col), pc.binary_join_element_wise("'", col, ""), col)
        columns.append(col)
    return pa.table(columns, names=table.column_names)


def to_arrow(data: Any) -> pa.Table:
    """An Arrow table from an Arrow table, a pandas frame, an Ibis table or a DuckDB relation."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "to_pyarrow"):  # Ibis table
        return data.to_pyarrow()
    if hasattr(data, "arrow") and hasattr(data, "columns") and hasattr(data, "types"):
        result = data.arrow()  # DuckDB relation
        return result.read_all() if hasattr(result, "read_all") else result
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data.copy()
        for c in frame.columns:  # mixed object columns (text and None) become strings
            if frame[c].dtype == object:
                frame[c] = frame[c].map(lambda v: v if v is None or isinstance(v, str) else str(v))
        return pa.Table.from_pandas(frame, preserve_index=False)
    raise TypeError(f"cannot write an object of type {type(data).__name__} as CSV")


def write_csv(data: Any, path: str | Path | IO[bytes], *, delimiter: str = ",",
              private: bool = False) -> int:
    """Write ``data`` as a CSV file (header row, UTF-8) with formulas neutralised (in the
    cells and the header row).

    Parameters
    ----------
    data : pyarrow.Table, pandas.DataFrame, Ibis table or DuckDB relation
        The rows to write.
    path : str, Path or binary file object
        Target file (its folder is created when missing), or a binary stream such as
        ``io.BytesIO`` (HTTP downloads).
    delimiter : str, default ","
        Field separator (``"\\t"`` for TSV).
    private : bool, default False
        The rows hold personal data in clear (``--pii include``): the file is written with
        mode ``0600`` (owner only; :func:`segflow._private.private_target`) instead of the
        umask's.

    Returns
    -------
    int
        Rows written.
    """
    import pyarrow.csv as pacsv

    table = neutralise_formulas(to_arrow(data))
    table = table.rename_columns([safe_name(str(n)) for n in table.column_names])
    options = pacsv.WriteOptions(delimiter=delimiter)
    if hasattr(path, "write"):
        pacsv.write_csv(table, path, write_options=options)
        return table.num_rows
    target = Path(path)  # type: ignore[arg-type]
    target.parent.mkdir(parents=True, exist_ok=True)
    if private:
        from segflow._private import private_target

        private_target(target)
    pacsv.write_csv(table, str(target), write_options=options)
    return table.num_rows
