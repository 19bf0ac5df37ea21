"""Excel-safe text in a user's CSV file, read as ingest reads it (docs/data.md, *Excel-safe
text*): a cell written ``="00123"`` (how exports keep leading zeros for Excel; also
``= "00123"``, and ``="a""b"`` for ``a"b``) is the text ``00123``, so that the ids of a file command are the ids the store holds (``="00123"`` beside
a project's ``00123`` matched no customer) and an amount ``="12.50"`` is the number 12.5
(it was refused as "expected a number").

A column that holds such cells is read by DuckDB's sniffer as text; once read, a column
that is not an id and holds only numbers (blank cells aside) is typed as numbers, as it
would have been had the numbers been written plainly. Nothing changes silently: one warning
per file names the first row and column and counts the values.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def read_excel_text(table: Any, path: Path | str, ids: Iterable[str] = ()) -> Any:
    """``table`` (Ibis, a CSV file as read) with the Excel-safe text of its text columns
    read as the text between the quotes (trimmed), the other columns that then hold only
    numbers typed as float64 (not the ``ids``); the table itself when no cell is such text
    (one query over the text columns that hold a double quote at all)."""
    import ibis

    from segflow.sources._ids import EXCEL_TEXT

    text = [c for c in table.columns if table[c].type().is_string()]
    if not text:
        return table
    # the substring test first, in a CASE (DuckDB evaluates both sides of an AND on every row):
    # the regular expression only for the values holding a double quote
    marked = {c: ibis.ifelse(table[c].contains('"'), table[c].strip().re_search(EXCEL_TEXT), False) for c in text}
    got = table.aggregate(**{f"n{i}": marked[c].cast("int64").sum() for i, c in enumerate(text)}).execute().iloc[0]
    hit = [c for i, c in enumerate(text) if int(got[f"n{i}"] or 0)]
    if not hit:
        return table
    numbered = table.mutate(_sf_row=ibis.row_number() + 1)
    any_hit = ibis.or_(*(ibis.ifelse(numbered[c].contains('"'), numbered[c].strip().re_search(EXCEL_TEXT), False)
                         for c in hit))
    first = numbered.filter(any_hit).order_by("_sf_row").limit(1).execute().iloc[0]
    column = next(c for c in hit if isinstance(first[c], str) and re.search(EXCEL_TEXT, first[c].strip()))
    total = sum(int(got[f"n{text.index(c)}"]) for c in hit)
    warnings.warn(f"file {path}, row {int(first['_sf_row'])}, column {column!r}: Excel-safe text (=\"...\", "
                  f"written to keep leading zeros) read as the text between its quotes ({total:,} such values)",
                  stacklevel=2)
    out = table.mutate(**{c: ibis.ifelse(marked[c], table[c].strip().re_extract(EXCEL_TEXT, 1).replace('""', '"').strip(),
                                         table[c])
                          for c in hit})
    skipped = set(ids)
    others = [c for c in hit if c not in skipped]
    if not others:
        return out
    words = {c: out[c].notnull() & (out[c].strip() != "") & out[c].strip().try_cast("float64").isnull()
             for c in others}
    left = out.aggregate(**{f"x{i}": words[c].cast("int64").sum() for i, c in enumerate(others)}).execute().iloc[0]
    numeric = [c for i, c in enumerate(others) if not int(left[f"x{i}"] or 0)]
    return out.mutate(**{c: out[c].strip().try_cast("float64") for c in numeric}) if numeric else out
