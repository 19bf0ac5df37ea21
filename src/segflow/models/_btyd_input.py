"""Input checks of the BTYD models: the compressed summary's triples, read from a pandas,
Arrow or Ibis table, with a one-line error naming the offending row and column."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from segflow.errors import InputError

#: Column names of other libraries accepted for the canonical ones.
_ALIASES = {"frequency": "x", "recency": "t_x", "periods": "n", "weights": "count"}


def as_triples(
    data: Any,
    columns: tuple[str, ...],
    *,
    integer: tuple[str, ...] = ("x",),
    nullable: tuple[str, ...] = ("monetary_value",),
    return_namer: bool = False,
) -> Any:
    """Validate a summary and return its columns as float arrays plus the weights.

    Parameters
    ----------
    data : pandas.DataFrame, pyarrow.Table or ibis.Table
        One row per customer or per distinct triple; an optional ``count`` column holds weights.
        An Ibis table is compressed in its engine first (see :func:`compress`).
    columns : tuple of str
        The required columns, in the model's order.
    return_namer : bool, default=False
        Also return a function naming a row in error messages (the customer when the data
        has a ``customer_id`` column, else the row's number and values).

    Returns
    -------
    (arrays, weights) or (arrays, weights, namer)
    """
    frame = _to_pandas(data, columns)
    renames = {k: v for k, v in _ALIASES.items() if k in frame.columns and v not in frame.columns}
    if renames:
        frame = frame.rename(columns=renames)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"the summary lacks the column(s) {missing}; expected {list(columns)} "
            "(plus an optional 'count' of customers per row)",
            column=missing[0],
        )
    arrays = {}
    where = _row_namer(frame, columns)
    for col in columns:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        if col in nullable:
            # a missing or negative mean spend is the spend model's to handle (it leaves
            # such customers out of its fit and counts them); only infinities are errors
            values = np.nan_to_num(values, nan=0.0, posinf=np.inf, neginf=-np.inf)
            _check_column(values, col, integer=False, where=where, negative_ok=True)
        else:
            _check_column(values, col, integer=col in integer, where=where)
        arrays[col] = values
    if "count" in frame.columns:
        weights = pd.to_numeric(frame["count"], errors="coerce").to_numpy(dtype=float)
        _check_column(weights, "count", integer=False, where=where)
    else:
        weights = np.ones(len(frame))
    if return_namer:
        return arrays, weights, where
    return arrays, weights


def _row_namer(frame: pd.DataFrame, columns: tuple[str, ...]) -> Callable[[int], str]:
    """How an error names a row: the customer when the summary has ids, else the row's values.

    A compressed summary's row number means nothing to a user (it is a position in an
    internal table), so rows without a customer id are named by their values.
    """
    if "customer_id" in frame.columns:
        ids = frame["customer_id"].to_numpy()
        return lambda row: f"customer {ids[row]!s}"
    present = [c for c in columns if c in frame.columns]

    def name(row: int) -> str:
        values = ", ".join(f"{c}={frame[c].iloc[row]!s}" for c in present)
        return f"summary row {row + 1} ({values})"

    return name


def _to_pandas(data: Any, columns: tuple[str, ...]) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas") and not hasattr(data, "group_by"):
        return data.to_pandas()  # pyarrow
    if hasattr(data, "group_by") and hasattr(data, "execute"):  # ibis.Table
        keys = [c for c in columns if c in data.columns]
        # sorted: the fit sums over rows, so the same triples in another order (a parallel
        # group-by's) would move the optimum in its last bits
        return data.group_by(keys).aggregate(count=data.count()).order_by(keys).execute()
    raise InputError(f"expected a pandas DataFrame, Arrow or Ibis table, got {type(data).__name__}")


def _check_column(
    values: np.ndarray,
    col: str,
    *,
    integer: bool,
    where: Callable[[int], str] | None = None,
    negative_ok: bool = False,
) -> None:
    bad = ~np.isfinite(values)
    if not negative_ok:
        bad |= values < 0
    if integer:
        bad |= values != np.round(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        kind = (
            "a non-negative integer" if integer
            else "a finite number" if negative_ok else "a finite non-negative number"
        )
        name = where(row) if where is not None else f"row {row + 1}"
        raise InputError(f"{name}: column {col!r}: expected {kind}, got {float(values[row])!r}")


def check_recency(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    t_name: str = "T",
    where: Callable[[int], str] | None = None,
) -> None:
    """Recency must lie in [0, T], and be 0 when there are no repeat purchases.

    ``where`` names the offending row (see :func:`as_triples`); the message also gives its
    values, since a compressed summary's row number means nothing to a user.
    """
    bad = (t_x > T + 1e-9) | ((x == 0) & (t_x > 0)) | (T < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        name = where(row) if where is not None else f"row {row + 1}"
        raise InputError(
            f"{name}: column 't_x': expected 0 <= t_x <= {t_name} and t_x = 0 when x = 0; "
            f"got x={x[row]:g}, t_x={t_x[row]:g}, {t_name}={T[row]:g}"
        )
