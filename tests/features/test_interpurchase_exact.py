"""``ipt_cv`` is one double on every engine: the gaps' sample deviation is taken from integer
sums (count, span, sum of squared gaps), as the feature state takes it, not from the engine's
float ``stddev``, whose summation order differs (Spark's and DuckDB's differed in the last
bit on 6 of 2,753 rows of a messy export; tests/spark/test_warehouse_messy.py).

Gaps of 17, 48, 23, 51, 45 and 54 days: span 238, sum of squares 10,664, so the variance is
(6 x 10,664 - 238^2) / (6 x 5) = 7,340 / 30 and ``ipt_cv`` = sqrt(7340 / 30) / (238 / 6);
DuckDB's float deviation made it 0.39433170442521237, one unit in the last place more.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
from tests.features._fixture import to_store
from tests.features.test_snapshot_features import _tx

from segflow.features import REQUIRED_TABLES, customer_features, snapshot_features
from segflow.features._state import feature_state, state_features
from segflow.store import Store

GAPS = [17, 48, 23, 51, 45, 54]
SNAPSHOT = dt.date(2025, 1, 1)


def test_ipt_cv_is_the_integer_formula_at_every_snapshot_and_in_the_state():
    day = pd.Timestamp("2024-01-02 10:00")
    rows = [_tx("g", day, 10.0, "G0")]
    for i, gap in enumerate(GAPS, start=1):
        day += pd.Timedelta(days=gap)
        rows.append(_tx("g", day, 10.0, f"G{i}"))
    want = math.sqrt(7340 / 30) / (238 / 6)
    assert sum(GAPS) == 238 and sum(g * g for g in GAPS) == 10664
    assert round(want, 12) == 0.394331704425
    store = Store(":memory:")
    to_store(store, {"transactions": pd.DataFrame(rows)})
    tables = {n: store.table(n) for n in REQUIRED_TABLES}
    one = customer_features(tables, SNAPSHOT).to_pandas()
    assert one["ipt_cv"].iloc[0] == want
    assert one["ipt_mean_days"].iloc[0] == 238 / 6
    # the one pass (its per-snapshot part) at two snapshots
    grid = snapshot_features(tables, [dt.date(2024, 12, 1), SNAPSHOT]).to_pandas()
    assert grid["ipt_cv"].tolist() == [want, want]
    # the carried feature state (the run's latest features): the same formula
    state = feature_state(tables, SNAPSHOT)
    assert state_features(tables, state, SNAPSHOT).to_pandas()["ipt_cv"].tolist() == [want]
    store.close()
