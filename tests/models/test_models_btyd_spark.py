"""btyd_summary on Spark local[1] equals btyd_summary on DuckDB (engine parity)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests._engines import require_spark

from segflow.models import btyd_summary, compress
from segflow.store import Store

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _log(n: int = 200, seed: int = 4) -> pa.Table:
    rng = np.random.default_rng(seed)
    cust = rng.integers(0, n, 3000)
    ts = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200 * 24, 3000), unit="h")
    amount = np.round(rng.gamma(2.0, 20.0, 3000), 2)
    amount[rng.random(3000) < 0.03] *= -1  # returns
    return pa.table(
        {
            "transaction_id": [str(i) for i in range(3000)],
            "customer_id": [f"c{c}" for c in cust],
            "ts": pa.array(ts.to_numpy().astype("datetime64[us]")),
            "amount": amount,
        }
    )


def test_spark_summary_equals_duckdb() -> None:
    require_spark()
    from segflow.engine import connect

    store = Store(":memory:")
    store.append("transactions", _log())
    kwargs = dict(
        calibration_end=dt.date(2024, 5, 1), observation_end=dt.date(2024, 7, 1), time_unit="W",
        warn=False,
    )
    want = btyd_summary(store.table("transactions"), **kwargs).execute()
    engine = connect(store, "spark")
    try:
        summary = btyd_summary(engine.table("transactions"), **kwargs)
        got = summary.execute()
        triples = compress(summary)
    finally:
        engine.close()
        store.close()
    key = "customer_id"
    got, want = (f.sort_values(key, ignore_index=True) for f in (got, want))
    assert list(got[key]) == list(want[key]) and len(want) > 100
    for col in want.columns:
        if col in (key, "first_purchase"):
            continue
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), err_msg=col)
    assert triples["count"].sum() == len(want)
