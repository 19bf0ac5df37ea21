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

_INT64 = (-(2**63), 2**64 - 1)  # int64 and uint64 together: what Arrow infers


def frame_table(frame: pd.DataFrame, id_cols: Collection[str] = ("customer_id",)) -> ibis.Table:
    """``frame`` as an in-memory Ibis table (see :func:`engine_ready`)."""
    return ibis.memtable(engine_ready(frame, id_cols))


def engine_ready(frame: pd.DataFrame, id_cols: Collection[str] = ("customer_id",)) -> pd.DataFrame:
    """``frame`` with its ``object`` columns of Python ints out of the 64-bit range as text
    (the ``id_cols``) or floats (the others); the frame itself when there is none."""
    changed = {}
    for name in [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c].dtype)]:
        values = frame[name].dropna().to_numpy()
        if len(values) and all(isinstance(v, Integral) and not isinstance(v, bool) for v in values) \
                and not all(_INT64[0] <= int(v) <= _INT64[1] for v in values):
            column = frame[name]
            changed[name] = (column.map(lambda v: v if pd.isna(v) else str(int(v))) if name in id_cols
                             else column.astype(float).astype(np.float64))
    return frame.assign(**changed) if changed else frame
