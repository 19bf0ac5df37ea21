"""Reading a customer-level file (CSV/TSV, Parquet, Excel; one row per customer) for
``segflow segment cluster`` and ``segflow segment profile``: ids as text, ingest's
missing-value tokens as missing values, one row per customer checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from segflow._rows import check_one_row_per_id
from segflow.cli._files import (
    canonical_ids,
    null_tokens,
    read_user_csv,
    read_user_parquet,
    without_tokens,
)
from segflow.errors import InputError, SegflowError

if TYPE_CHECKING:  # ibis and pandas load only in the commands that use them (fast --help)
    import ibis
    import pandas as pd

_READERS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _excel_id(value: object, row: int, path: Path, column: str) -> str | None:
    """An Excel id cell as text: a text cell as written; a number cell (a double in Excel)
    only as a whole number below 2^53, whose digits it holds exactly (as ingest's float ids,
    docs/data.md). Raises InputError naming the row otherwise."""
    import math
    import numbers

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if float(value).is_integer() and abs(value) < 2**53:
            return str(int(value))
        raise InputError(f"the id {value!r} is a number cell that is not a whole number below "
                         "2^53, which Excel cannot hold exactly: format the id column as text",
                         file=str(path), row=row, column=column)
    return str(value)


def _refuse_text_in_numbers(table: ibis.Table, id_col: str, path: Path) -> ibis.Table:
    """Refuse a column of numbers holding some text (``n/a``, ``?``, ``abc``, not a
    missing-value token; more numbers than texts): DuckDB then reads the whole column as
    text, and it was clustered and profiled as categories (one ``NA`` turned k-means into
    k-prototypes) with only a warning. InputError naming the file, the first rows of text,
    the column and the first text; a column mostly of text is categories, as it is. Returns
    ``table`` with a text column holding only numbers as numbers (float64): DuckDB's sniffer
    reads a column whose first cell is ``inf`` or ``NaN`` as text, and it was profiled as
    categories."""

    from segflow._rows import offending_rows

    text = [c for c in table.columns if c != id_col and table[c].type().is_string()]
    if not text:
        return table

    def bad(c: str) -> ibis.Value:
        return table[c].notnull() & table[c].strip().try_cast("float64").isnull()

    got = table.aggregate(**{f"_t{i}": bad(c).sum() for i, c in enumerate(text)},
                          **{f"_v{i}": table[c].count() for i, c in enumerate(text)}
                          ).to_pyarrow().to_pylist()[0]
    def numbers_of(i: int) -> int:
        return int(got[f"_v{i}"] or 0) - int(got[f"_t{i}"] or 0)

    for i, c in enumerate(text):
        texts = int(got[f"_t{i}"] or 0)
        numbers = numbers_of(i)
        if texts and numbers > texts:  # mostly numbers: the text is a mistake or a gap mark
            rows = offending_rows(table, bad(c), value=c, total=texts)
            raise InputError(
                f"{numbers:,} numbers and {texts:,} text value{'s' if texts > 1 else ''} (first "
                f"{rows.values[0]!r}, row "
                f"{rows.rows[0]}) in a column of numbers; empty those cells for missing values "
                "(or name the text in --null-values)",
                file=str(path), row=rows.rows, column=c, rows_in_all=texts)
    numeric = [c for i, c in enumerate(text) if numbers_of(i) and not int(got[f"_t{i}"] or 0)]
    return table.mutate(**{c: table[c].strip().try_cast("float64") for c in numeric})


def _excel_without_tokens(frame: pd.DataFrame, tokens: tuple[str, ...], id_col: str) -> pd.DataFrame:
    """``frame`` (an Excel sheet read with only ``tokens`` as pandas' missing values, exact)
    with the padded tokens (`` NA``) and blank text cells missing too, in every text column
    but the id; a column then holding only numbers is numeric (float), one holding numbers
    and other text is text, as in a CSV (pyarrow refused the mix: a one-line reader error)."""
    import pandas as pd

    wanted = {t.strip() for t in tokens} | {""}
    for c in frame.columns:
        if c == id_col or pd.api.types.is_numeric_dtype(frame[c].dtype) \
                or pd.api.types.is_datetime64_any_dtype(frame[c].dtype):
            continue
        values = frame[c].astype(object)
        gone = values.map(lambda v: isinstance(v, str) and v.strip() in wanted).astype(bool)
        values = values.where(~gone, None)
        kept = values.dropna()
        if not len(kept) or all(isinstance(v, str) for v in kept):
            frame[c] = values
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in kept):
            frame[c] = pd.to_numeric(values).astype("float64")
        else:
            frame[c] = values.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return frame


def read_customer_file(con: ibis.BaseBackend, path: Path, *, id_col: str, name: str,
                       null_values: Iterable[str] | None = None) -> ibis.Table:
    """A customer-level file (CSV/TSV, Parquet or Excel) as an engine table; ids are strings.

    In every column but the id, a blank text cell and one of ``null_values`` (default
    :func:`~segflow.cli._files.null_tokens`, ingest's default; compared after trimming,
    case-sensitive; ``()`` for none, as ingest's ``null_values = []``) is missing (NULL),
    whatever the format: a Parquet file's text columns as ingest reads them, an Excel file
    without pandas' own longer list (``n/a``, ``nan``, ``NaN`` stay text, as in a CSV)."""
    if not path.exists():
        raise InputError("no such file", file=str(path))
    tokens = null_tokens() if null_values is None else tuple(null_values)
    suffix = path.suffix.lower()
    try:
        if _READERS.get(suffix) == "csv":
            table = read_user_csv(con, path, id_columns=(id_col,), table_name=name,
                                  null_values=tokens)
            if not tokens:  # (read_user_csv cleans the cells only with tokens)
                table = without_tokens(table, (), [id_col], retype=True)
            table = _refuse_text_in_numbers(table, id_col, path)
        elif _READERS.get(suffix) == "parquet":
            # a text column of numbers whose gaps are tokens is numbers, as in a CSV file
            table = without_tokens(read_user_parquet(con, path, table_name=name), tokens, [id_col],
                                   retype=True)
            table = _refuse_text_in_numbers(table, id_col, path)
        elif suffix in (".xlsx", ".xls"):
            import pandas as pd

            from segflow.sources._names import refuse_repeated_names

            head = pd.read_excel(path, header=None, nrows=1)  # the names as written
            names = [str(v) for v in head.iloc[0]] if len(head) else []
            refuse_repeated_names(names, str(path), trimmed=True)
            frame = pd.read_excel(path, dtype={n: object for n in names if n.strip() == id_col},
                                  keep_default_na=False, na_values=list(tokens))
            frame.columns = [str(c).strip() for c in frame.columns]  # as the CSV reader's
            frame = _excel_without_tokens(frame, tokens, id_col)
            if id_col in frame.columns:
                frame[id_col] = [_excel_id(v, row, path, id_col)
                                 for row, v in enumerate(frame[id_col], start=1)]
            table = con.create_table(name, frame)
            table = _refuse_text_in_numbers(table, id_col, path)
        else:
            raise InputError("expected a .csv, .tsv, .parquet or .xlsx file", file=str(path))
    except SegflowError:
        raise
    except Exception as exc:  # reader errors name the line; keep them, as one message
        from segflow.cli._files import reader_error

        raise InputError(f"cannot read the file: {reader_error(exc)}", file=str(path)) from exc
    if id_col not in table.columns:
        from segflow._suggest import did_you_mean

        raise InputError(
            f"no id column {id_col!r}; {did_you_mean(id_col, table.columns)}"
            f"the columns are {list(table.columns)} (use --id-col)",
            file=str(path),
            column=id_col,
        )
    table = canonical_ids(table.mutate(**{id_col: table[id_col].cast("string")}), [id_col])
    check_one_row_per_id(table, id_col, str(path))
    refuse_unusable_numbers(table, path, skip=(id_col,))
    return table


#: The largest magnitude a number of a customer file may have: its square (variances,
#: distances) summed over many rows stays finite in float64 (about 1.8e308).
LARGEST_NUMBER = 1e150


def refuse_unusable_numbers(table: ibis.Table, path: Path | str, *, skip: Iterable[str] = ()) -> None:
    """Refuse a float column of ``table`` (a file as read from ``path``) holding a number
    that cannot be computed with: infinite (``inf``, ``-inf``, ``1e400``), not a number
    (``NaN`` written as text) or beyond +-:data:`LARGEST_NUMBER` (``1e300``: its square
    overflows, and the engine's standard deviation or scikit-learn's scaling failed with a
    traceback). InputError naming the file, the first rows, the column and the first value
    as read; an empty cell is a missing value and is fine. One query over the float columns,
    one more for the rows of the first column at fault."""
    from segflow._rows import offending_rows

    skipped = set(skip)
    floats = [c for c in table.columns
              if c not in skipped and table[c].type().is_floating()]
    if not floats:
        return

    def bad(c: str) -> ibis.Value:
        x = table[c]
        return x.isnan() | x.isinf() | (x.abs() > LARGEST_NUMBER)

    counts = table.aggregate(**{f"_n{i}": bad(c).fill_null(False).sum() for i, c in enumerate(floats)}
                             ).to_pyarrow().to_pylist()[0]
    for i, c in enumerate(floats):
        if n := int(counts[f"_n{i}"] or 0):
            rows = offending_rows(table, bad(c), value=c, total=n)
            raise InputError(
                f"{n:,} values are infinite, not a number or too large to compute with "
                f"(first {rows.values[0]!r}, row {rows.rows[0]}; expected numbers within "
                f"+-{LARGEST_NUMBER:g}); empty those cells for missing values",
                file=str(path), row=rows.rows, column=c, rows_in_all=n)


def check_value_column(features: ibis.Table, value_col: str | None, path: Path) -> ibis.Table:
    """``features`` with its value column (``value_col``, default ``monetary``) as numbers:
    InputError naming the file, the column and its first rows when it cannot be summed as
    money: ``--value-col`` naming no column of the file (without it, a file lacking
    ``monetary`` just has no value shares), or a column of text (``n/a``, ``12 EUR``: the
    rows are those whose cell is no number) or of another type. A text column of numbers
    only (a Parquet file's) is read as numbers."""
    name = value_col or "monetary"
    if name not in features.columns:
        if value_col is None:
            return features
        from segflow._suggest import did_you_mean

        raise InputError(f"no value column {name!r}; {did_you_mean(name, features.columns)}"
                         f"the columns are {list(features.columns)} (use --value-col)",
                         file=str(path), row=0, column=name)
    from segflow._rows import as_numbers

    return as_numbers(features, name, source=str(path), hint="choose another --value-col")
