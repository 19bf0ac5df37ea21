"""pandas frames a user hands to the library, as engine tables.

``ibis.memtable`` infers each column's type through Arrow, which cannot hold a Python int
beyond 64 bits: an ``object`` column of such ids (``2**64 + 1``) raised Python's
``OverflowError`` from inside Arrow. segflow keeps ids as text everywhere (the store's
``customer_id`` is VARCHAR and a store append writes such an id as its digits), so an id
column of big ints becomes text the same way, and any other such column (an amount) a
float, as amounts are everywhere else.
"""

from __future__ import annotations

from collections.abc import Collection
from numbers import Integral

import ibis
import numpy as np
import pandas as pd

_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)


def frame_table(frame: pd.DataFrame, id_cols: Collection[str] = ("customer_id",)) -> ibis.Table:
    """``frame`` as an in-memory Ibis table (see :func:`engine_ready`)."""
    return ibis.memtable(engine_ready(frame, id_cols))


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _one_arrow_int(values: list[int]) -> bool:
    """Whether Arrow holds ``values`` in one integer type: all in int64, or all in uint64
    (``-1`` beside ``2**63 + 1`` is neither: Python's OverflowError)."""
    return all(_INT64[0] <= v <= _INT64[1] for v in values) or all(_UINT64[0] <= v <= _UINT64[1] for v in values)


def engine_ready(frame: pd.DataFrame, id_cols: Collection[str] = ("customer_id",)) -> pd.DataFrame:
    """``frame`` with its ``object`` columns of Python ints that no 64-bit integer type holds
    as text (the ``id_cols``) or floats (the others); an id column of ints and texts
    (``"C1"`` beside ``123``, which Arrow refused) as text too. The frame itself when there
    is none."""
    changed = {}
    for name in [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c].dtype)]:
        column = frame[name]
        kind = pd.api.types.infer_dtype(column, skipna=True)  # (a C loop: text columns end here)
        if kind not in ("integer", "mixed-integer"):
            continue
        values = column.dropna().tolist()
        if kind == "integer":
            if not _one_arrow_int([int(v) for v in values]):
                changed[name] = (column.map(lambda v: v if pd.isna(v) else str(int(v))) if name in id_cols
                                 else column.astype(float).astype(np.float64))
        elif name in id_cols and all(isinstance(v, str) or _is_int(v) for v in values):
            changed[name] = column.map(lambda v: str(int(v)) if _is_int(v) else v)
    return frame.assign(**changed) if changed else frame
