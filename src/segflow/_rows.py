"""The first offending rows of a table read from a file, for messages that name them.

Rows are numbered in the file's order as every file message of segflow numbers them
(:func:`segflow.errors.where`): 1 is the first data row, line 2 of a CSV file whose header
is line 1 (DuckDB reads a file in order; a query without ORDER BY keeps that order).
Number the table as read from the file, not a copy of it: a table cached from it
(``.cache()``, a CREATE TABLE AS) was seen to hold the rows in another order in half of
the runs (1M CSV rows: the first row without an amount came out as 148 instead of 144).
"""

from __future__ import annotations

from typing import Any, NamedTuple

#: How many offending row numbers a message names (then ``...`` and the count).
SHOWN_ROWS = 3


class Offending(NamedTuple):
    """The first offending data rows of a file (1: the first data row), how many rows
    offend in all, and the values of the column asked for on those first rows."""

    rows: list[int]
    total: int
    values: list[Any]


def offending_rows(table: Any, condition: Any, *, value: str | None = None,
                   show: int = SHOWN_ROWS, total: int | None = None) -> Offending:
    """The first ``show`` data rows of ``table`` (Ibis, a file as read) where ``condition``
    (a boolean column of ``table``) holds, how many there are, and the cells of the column
    ``value`` on those rows: for a message naming them (:func:`segflow.errors.where`). Rows
    are numbered in the file's order, as the other file errors number them: 1 is the first
    data row (line 2 of a CSV with a header). A NULL condition does not count. One scan for
    the rows, one more for the count when there are more than ``show``; run it for an error
    or a note, once a problem is known; a ``total`` already counted saves the count."""
    import ibis

    numbered = table.mutate(_sf_row=ibis.row_number() + 1, _sf_bad=condition.fill_null(False))
    bad = numbered.filter(numbered._sf_bad)
    cols = ["_sf_row", *([value] if value is not None else [])]
    first = bad.order_by("_sf_row").limit(show).select(*cols).to_pyarrow()
    rows = [int(r) for r in first["_sf_row"].to_pylist()]
    if total is None:
        total = len(rows) if len(rows) < show else int(bad.count().execute())
    return Offending(rows, total, first[value].to_pylist() if value is not None else [])


def as_numbers(table: Any, column: str, *, source: str | None = None,
               what: str = "the value column", hint: str = "choose another value column") -> Any:
    """``table`` (Ibis) with ``column`` as numbers: as it is when numeric, booleans as 1 and
    0, text of numbers (``12.5``, `` 3``; empty cells missing) cast to float64. Otherwise an
    :class:`~segflow.errors.InputError` naming ``source`` (the file, if any), the first rows
    whose cell is no number (only with a file: a table's own order means nothing) and
    the column, e.g. ``file c.csv, rows 2 and 4, column 'clv': the value column holds text,
    not numbers ('n/a' on row 2); empty those cells or choose another value column``; a
    column of another type (dates) is named without rows."""
    from segflow.errors import InputError

    kind = table[column].type()
    if kind.is_numeric():
        return table
    if kind.is_boolean():  # True counts 1
        return table.mutate(**{column: table[column].cast("float64")})
    if not kind.is_string():
        raise InputError(f"{what} holds {kind} values, not numbers; {hint}", file=source,
                         column=column)
    number = table[column].strip().try_cast("float64")
    bad = offending_rows(table, table[column].notnull() & number.isnull(), value=column)
    if not bad.rows:  # numbers written as text, or empty cells
        return table.mutate(**{column: number})
    first = f"{bad.values[0]!r} on row {bad.rows[0]}" if source is not None else repr(bad.values[0])
    raise InputError(f"{what} holds text, not numbers ({first}); empty those cells or {hint}",
                     file=source, row=bad.rows if source is not None else None, column=column,
                     rows_in_all=bad.total)


def first_rows(table: Any, conditions: dict[str, Any], *, show: int = SHOWN_ROWS) -> dict[str, list[int]]:
    """The first ``show`` data rows of ``table`` where each of ``conditions`` holds, by
    name (numbered as :func:`offending_rows` numbers them), in one query: the numbered
    table is shared by the parts of a UNION ALL (DuckDB reads the file once: 2 s for three
    conditions over 1M CSV rows where one query per condition took 5-6 s, about 1 s a scan
    under load)."""
    import ibis

    if not conditions:
        return {}
    names = list(conditions)
    numbered = table.mutate(_sf_row=ibis.row_number() + 1,
                            **{f"_sf_k{i}": conditions[n].fill_null(False) for i, n in enumerate(names)})
    parts = [numbered.filter(numbered[f"_sf_k{i}"]).order_by("_sf_row").limit(show)
             .select("_sf_row", _sf_kind=ibis.literal(i)) for i in range(len(names))]
    got = (parts[0] if len(parts) == 1 else ibis.union(*parts)).to_pyarrow()
    out: dict[str, list[int]] = {n: [] for n in names}
    for row, kind in sorted(zip(got["_sf_row"].to_pylist(), got["_sf_kind"].to_pylist(), strict=True)):
        out[names[kind]].append(int(row))
    return out


def _no_rows(source: str | None) -> Any:
    from segflow.errors import InputError

    return InputError("the file has a header but no data rows" if source is not None
                      else "the table has no rows", file=source)


def _repeated_error(n: int, distinct: int, rows: list[int] | None, values: list[Any], total: int,
                    id_col: str, source: str | None) -> Any:
    """The error of ids on more than one row: the first repeated ids, the rows they are on."""
    from segflow.errors import InputError

    shown = ", ".join(repr(v) for v in dict.fromkeys(values))
    return InputError(
        f"expected one row per customer, but {n - distinct:,} "
        f"{'id repeats' if n - distinct == 1 else 'ids repeat'} (first {shown}, on "
        f"{total:,} rows in all)", file=source, row=rows, column=id_col,
        rows_in_all=total if rows else None)


def _no_id_error(nulls: int, rows: list[int] | None, id_col: str, source: str | None) -> Any:
    from segflow.errors import InputError

    return InputError(f"{nulls:,} {'row has' if nulls == 1 else 'rows have'} no id; give each row "
                      "its customer's id",
                      file=source, row=rows, column=id_col, rows_in_all=nulls if rows else None)


def check_one_row_per_id(table: Any, id_col: str, source: str | None, *, empty_ok: bool = False) -> None:
    """Refuse a customer-level table (Ibis, a file as read from ``source``) that is not one
    row per customer: :class:`~segflow.errors.InputError` naming the file, the first rows
    and the id column, for a header without rows, rows without an id (``rows 4, 9, 12, ...
    (57 in all)``), or ids on more than one row (those rows, and the first repeated ids:
    ``'A' on rows 1 and 2``). A repeated id put one customer in a target and in its
    hold-out, and counted its outcome twice in a read-out; a row without an id is nobody's.
    Rows are named only with a ``source`` (a table's own order means nothing). With
    ``empty_ok`` a table without rows passes (no customer is on two rows). One aggregate
    query, and one more to name the rows of a fault found."""
    ids = table[id_col]
    stats = table.aggregate(n=table.count(), ids=ids.nunique(), nulls=ids.isnull().sum()
                            ).to_pyarrow().to_pylist()[0]
    n = int(stats["n"])
    if not n:  # a header alone: the sums below are NULL
        if empty_ok:
            return
        raise _no_rows(source)
    if nulls := int(stats["nulls"]):
        rows = offending_rows(table, ids.isnull(), total=nulls).rows if source is not None else None
        raise _no_id_error(nulls, rows, id_col, source)
    if int(stats["ids"]) != n:
        groups = table.group_by(id_col).aggregate(_sf_n=table.count())
        bad = offending_rows(table, ids.isin(groups.filter(groups._sf_n > 1)[id_col]), value=id_col)
        raise _repeated_error(n, int(stats["ids"]), bad.rows if source is not None else None,
                              bad.values, bad.total, id_col, source)


def check_one_row_per_id_frame(frame: Any, id_col: str, source: str | None = None, *,
                               empty_ok: bool = False, name_rows: bool = True) -> None:
    """:func:`check_one_row_per_id` on a pandas DataFrame, with the same messages; rows are
    the frame's positions from 1 (a file's data rows when the frame was read from it), or
    not named (``name_rows=False``: a frame in an order of its own, such as sorted ids)."""
    import numpy as np

    ids = frame[id_col]
    if not len(frame):
        if empty_ok:
            return
        raise _no_rows(source)
    missing = ids.isna().to_numpy()
    if missing.any():
        rows = (np.flatnonzero(missing)[:SHOWN_ROWS] + 1).tolist() if name_rows else None
        raise _no_id_error(int(missing.sum()), rows, id_col, source)
    repeated = ids.duplicated(keep=False).to_numpy()
    if repeated.any():
        first = np.flatnonzero(repeated)[:SHOWN_ROWS]
        raise _repeated_error(len(frame), int(ids.nunique()), (first + 1).tolist() if name_rows else None,
                              ids.iloc[first].tolist(), int(repeated.sum()), id_col, source)
