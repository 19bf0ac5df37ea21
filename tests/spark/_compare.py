"""Comparing the rows of a DuckDB store's table with the Spark warehouse's (the Spark tests
that check the engines give the same rows)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

#: Columns that say when or by which run a row was written, not what it holds.
WHEN = {"load_id", "run_id", "ingested_at", "started_at", "finished_at", "created_at",
        "fitted_at", "computed_at"}


def same_rows(name: str, duck: pd.DataFrame, spark: pd.DataFrame, key: list[str], *,
              rtol: dict[str, float] | None = None) -> int:
    """The rows of ``duck`` and ``spark`` are equal (every column but :data:`WHEN`; the
    columns of ``rtol`` to that relative tolerance, all others exactly); returns the rows."""
    cols = [c for c in duck.columns if c not in WHEN]
    frames = []
    for frame in (duck, spark[cols]):
        out = frame[cols].copy()
        for col in out.columns:
            first = out[col].dropna().iloc[0] if out[col].notna().any() else None
            if str(out[col].dtype).startswith("datetime") or isinstance(first, dt.date):
                out[col] = pd.to_datetime(out[col]).astype("datetime64[us]")
        out = out.sort_values(key, ignore_index=True).astype(object)
        frames.append(out.where(out.notna(), None))
    d, s = frames
    assert len(d) == len(s), f"{name}: {len(d)} rows on DuckDB, {len(s)} on Spark"
    loose = rtol or {}
    exact = [c for c in cols if c not in loose]
    pd.testing.assert_frame_equal(s[exact], d[exact], check_dtype=False, obj=name)
    for col, tol in loose.items():
        np.testing.assert_allclose(s[col].astype(float), d[col].astype(float), rtol=tol,
                                   atol=1e-12, equal_nan=True, err_msg=f"{name}.{col}")
    return len(d)
