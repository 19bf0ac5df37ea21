"""Excel sheets as Arrow tables: every cell as text, and the value of each number cell beside it.

An .xlsx number cell is a double (Excel keeps 15 significant digits and stores a double), so
an id typed as a number is a float id, while a cell formatted as text keeps its characters.
:func:`sheet_table` turns the cells pandas read (``dtype=object``) into:

- one text column per sheet column, as pandas' ``dtype=str`` gives it (``123.0`` -> ``'123'``,
  ``1.5`` -> ``'1.5'``, dates ``'2024-01-05 10:00:00'``, ``True``); empty and error cells
  (``#N/A``, ``#DIV/0!``) are NULL;
- for each column holding at least one number cell, a hidden DOUBLE column with the number
  of each number cell (NULL for the other cells), named in the returned map. Id columns
  read it (:func:`segflow.sources._ids.id_value`): the text ``'9223372036854775808'`` pandas
  makes of the double 2^63 is not taken for an id.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _number(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond the doubles (never an Excel number): no id
        return math.inf if value > 0 else -math.inf


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None  # error cells (pandas reads them as NaN)
    text = str(value)
    return text if text != "" else None


def sheet_table(frame: pd.DataFrame) -> tuple[pa.Table, dict[str, str]]:
    """The sheet ``frame`` (read with ``dtype=object, keep_default_na=False``) as an Arrow
    table: the text columns (header names trimmed), then the hidden number columns; and the
    map {sheet column: its hidden number column}."""
    names = [str(c).strip() for c in frame.columns]
    taken = set(names)
    texts, numbers_, extra, hidden = [], [], [], {}
    for i, name in enumerate(names):
        cells = frame.iloc[:, i].tolist()
        text = [_text(v) for v in cells]
        texts.append(pa.array(text, pa.string()))
        nums = [_number(v) if t is not None and _is_number(v) else None
                for v, t in zip(cells, text, strict=True)]
        if any(n is not None for n in nums):
            col = f"_sf_number_{i}"
            while col in taken:
                col += "_"
            taken.add(col)
            hidden.setdefault(name, col)  # two columns of one name: the first is mapped
            extra.append(col)
            numbers_.append(pa.array(nums, pa.float64()))
    return pa.table([*texts, *numbers_], names=[*names, *extra]), hidden
