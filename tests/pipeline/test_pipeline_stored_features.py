"""Commands that need the features of the latest snapshot (``segment profile``, ``segment
cluster``, ``churn score``, a refresh's re-scoring) read the run's stored table when it is
current, instead of reading all history again: the same rows, and a fresh computation
whenever the data or the settings moved on."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from segflow.engine import Engine
from segflow.features import customer_features
from segflow.features._stored_state import current_features, stored_features
from segflow.pipeline import canonical_tables


def _frame(table) -> pd.DataFrame:
    return table.to_pandas().sort_values("customer_id", ignore_index=True)


def test_the_stored_features_are_used_only_while_current(ran_project):
    project, summary = ran_project  # a copy of the fixture project after its first run
    latest = summary.snapshot_dates[-1]
    tables = canonical_tables(Engine("duckdb", project.store))
    stored = stored_features(project.store, tables, latest, window_days=None)
    assert stored is not None
    computed = customer_features(tables, latest, window_days=None)
    assert stored.schema() == computed.schema()
    pd.testing.assert_frame_equal(_frame(stored), _frame(computed))
    assert len(_frame(stored)) == 60
    # another snapshot, another window: not what is stored
    earlier = summary.snapshot_dates[-2]
    assert stored_features(project.store, tables, earlier, window_days=None) is None
    assert stored_features(project.store, tables, latest, window_days=90) is None
    # a late row before the snapshot: the stored features are stale, computed again
    late = pa.table({"transaction_id": ["LATE1"], "customer_id": ["C000"],
                     "ts": pa.array([dt.datetime(2024, 2, 3, 10)], pa.timestamp("us")),
                     "amount": [5000.0], "quantity": [1.0], "category": ["books"],
                     "channel": ["web"], "is_return": [False]})
    project.store.append("transactions", late)
    tables = canonical_tables(Engine("duckdb", project.store))
    assert stored_features(project.store, tables, latest, window_days=None) is None
    fresh = _frame(current_features(project.store, tables, latest, window_days=None))
    before = _frame(stored).set_index("customer_id")
    after = fresh.set_index("customer_id")
    assert after.loc["C000", "monetary"] - before.loc["C000", "monetary"] == 5000.0
    # the next run stores them again: current once more
    project.run()
    tables = canonical_tables(Engine("duckdb", project.store))
    again = stored_features(project.store, tables, latest, window_days=None)
    assert again is not None
    pd.testing.assert_frame_equal(_frame(again), fresh)
