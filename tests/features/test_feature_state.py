"""The feature state carried from one snapshot to the next equals the readable definition.

``state_features(next_state(feature_state(s_a), s_a, s_b), s_b)`` must hold exactly the rows
of ``customer_features(tables, s_b)``, column by column (money to a ten-thousandth, floats to
1e-9): on the edge fixture of the one-pass test (window edges, entries, exits, returns, an
order over three periods, a customer first seen in the new period, one whose window
empties), for every consecutive pair of its snapshots, and on the demo data.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from tests.features._fixture import to_store
from tests.features.test_snapshot_features import MONEY, S, edge_tables

from segflow.features import REQUIRED_TABLES, customer_features
from segflow.features._state import feature_state, next_state, state_features
from segflow.store import Store


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    got = got.sort_values("customer_id", ignore_index=True)
    want = want.sort_values("customer_id", ignore_index=True)
    assert got.customer_id.tolist() == want.customer_id.tolist()
    for name in got.columns[1:]:
        g, w = got[name], want[name]
        if name in MONEY:
            np.testing.assert_allclose(g.astype(float), w.astype(float), rtol=0, atol=1e-4,
                                       equal_nan=True, err_msg=name)
        elif g.dtype.kind == "f" or w.dtype.kind == "f":
            np.testing.assert_allclose(g.astype(float), w.astype(float), rtol=1e-9,
                                       atol=1e-12, equal_nan=True, err_msg=name)
        else:
            assert [None if pd.isna(v) else v for v in g] == \
                [None if pd.isna(v) else v for v in w], name


@pytest.fixture(scope="module")
def edge():
    store = Store(":memory:")
    to_store(store, edge_tables())
    yield {name: store.table(name) for name in REQUIRED_TABLES}
    store.close()


@pytest.mark.parametrize("window_days", [None, 90])
def test_state_carried_over_each_period_equals_the_definition(edge, window_days):
    for a, b in zip(S, S[1:]):
        state = feature_state(edge, a, window_days=window_days).cache()
        new = next_state(edge, state, a, b, window_days=window_days)
        got = state_features(edge, new, b, window_days=window_days).to_pandas()
        want = customer_features(edge, b, window_days=window_days).to_pandas()
        assert_same(got, want)
        # carrying the state equals the state computed from all history
        full = feature_state(edge, b, window_days=window_days).to_pandas()
        assert_same(new.to_pandas()[full.columns], full)
