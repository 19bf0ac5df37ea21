"""The feature state carried from one snapshot to the next equals the readable definition.

``state_features(next_state(feature_state(s_a), s_a, s_b), s_b)`` must hold exactly the rows
of ``customer_features(tables, s_b)``, column by column (money to a ten-thousandth, floats to
1e-9): on the edge fixture of the one-pass test (window edges, entries, exits, returns, an
order over three periods, a customer first seen in the new period, one whose window
empties), for every consecutive pair of its snapshots, and on the demo data.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from tests.features._fixture import to_store
from tests.features.test_snapshot_features import S, assert_same_columns, edge_tables

from segflow.features import REQUIRED_TABLES, customer_features
from segflow.features._snapshots import snapshot_features_and_state
from segflow.features._state import (
    MEASURES,
    MONEY,
    STATE_VERSION,
    feature_state,
    next_state,
    state_features,
)
from segflow.features._stored_state import latest_features, stored_state, write_state
from segflow.store import Store


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    got = got.sort_values("customer_id", ignore_index=True)
    want = want.sort_values("customer_id", ignore_index=True)
    assert got.customer_id.tolist() == want.customer_id.tolist()
    assert_same_columns(got, want, got.columns[1:])


@pytest.fixture(scope="module")
def edge():
    store = Store(":memory:")
    to_store(store, edge_tables())
    yield {name: store.table(name) for name in REQUIRED_TABLES}
    store.close()


def test_state_carried_over_the_periods_equals_the_definition(edge):
    # chained: the state at S[2] carried to S[3], S[4], S[5] (the edges around S4, the
    # customer first seen just before S[5], the exits), 90-day window
    state = feature_state(edge, S[2], window_days=90).cache()
    for a, b in zip(S[2:], S[3:], strict=False):
        state = next_state(edge, state, a, b, window_days=90).cache()
        got = state_features(edge, state, b, window_days=90).to_pandas()
        assert_same(got, customer_features(edge, b, window_days=90).to_pandas())
    at = got.set_index("customer_id")
    assert at.loc["late", "frequency"] == 1 and at.loc["x", "frequency_12m"] == 0
    assert at.loc["r", "monetary_12m"] == pytest.approx(40 - 15 - 15 - 200)
    # carrying the state equals the state computed from all history
    full = feature_state(edge, S[-1], window_days=90).to_pandas()
    assert_same(state.to_pandas()[full.columns], full)


def test_the_one_pass_gives_the_state_of_its_last_snapshot(edge):
    # the full run's state comes from the one pass's own tables (two chunks of customers)
    # and equals the state computed from all history (its features: the code of
    # snapshot_features, tests/features/test_snapshot_features.py; without a window: the
    # demo's full and incremental runs, tests/pipeline/test_pipeline_spells.py)
    window = 90
    features, state = snapshot_features_and_state(edge, S, window_days=window,
                                                  chunk_customers=6)
    got, want = state.to_pandas(), feature_state(edge, S[-1], window_days=window).to_pandas()
    assert list(got.columns) == ["customer_id", *MEASURES] and len(got) == len(want) > 5
    assert_same(got, want)
    money = list(MONEY)
    assert (got.drop(columns=money).dtypes[1:] == "int64").all()
    assert all(isinstance(v, Decimal) for v in got[money].to_numpy().ravel())
    assert got._dbad1.abs().sum() + got._yc3.sum() > 0
    assert features.snapshot_date.nunique().execute() == len(S)


def test_state_without_a_window_and_over_two_periods(edge):
    # no window_days; from S[1] straight to S[4] (three periods at once)
    state = feature_state(edge, S[1]).cache()
    got = state_features(edge, next_state(edge, state, S[1], S[4]), S[4]).to_pandas()
    assert_same(got, customer_features(edge, S[4]).to_pandas())


def test_stored_state_is_used_only_at_its_snapshot_and_settings():
    store = Store(":memory:")
    to_store(store, edge_tables())
    tables = {name: store.table(name) for name in REQUIRED_TABLES}
    # a new (or upgraded) store has the table, empty, with the state's columns
    cols = [r[0] for r in store.raw.execute("DESCRIBE feature_state").fetchall()]
    assert cols == ["snapshot_date", "state_key", "customer_id", *MEASURES]
    assert stored_state(store, tables, S[3], 90) is None  # nothing stored yet
    write_state(store, feature_state(tables, S[3], window_days=90), S[3], 90)
    assert stored_state(store, tables, S[2], 90) is None  # another snapshot
    assert stored_state(store, tables, S[3], None) is None  # other settings
    got = stored_state(store, tables, S[3], 90).to_pandas()
    want = feature_state(tables, S[3], window_days=90).to_pandas()
    assert_same(got[want.columns], want)
    # the new snapshot's features from it equal the definition (and the state is carried)
    latest, state = latest_features(store, tables, S[4], S[3], window_days=90)
    assert state is not None
    assert_same(latest.to_pandas(), customer_features(tables, S[4], window_days=90).to_pandas())
    # without a state at the previous snapshot: the definition, no carried state
    latest, state = latest_features(store, tables, S[5], S[4], window_days=90)
    assert state is None and latest.count().execute() == \
        customer_features(tables, S[5], window_days=90).count().execute()
    latest.release()
    store.close()


def test_a_state_stored_by_the_int64_code_is_not_used():
    # version 3 stored money as int64 millionths: a store written by that code recomputes
    # the new month from the definition, and its next state is written as exact decimals
    assert STATE_VERSION == 4
    store = Store(":memory:")
    to_store(store, edge_tables())
    tables = {name: store.table(name) for name in REQUIRED_TABLES}
    write_state(store, feature_state(tables, S[3], window_days=90), S[3], 90)
    cols = ", ".join(f'CAST("{m}" * 1000000 AS BIGINT) AS "{m}"' if m in MONEY else f'"{m}"'
                     for m in MEASURES)
    store.raw.execute("CREATE OR REPLACE TABLE feature_state AS SELECT snapshot_date, "
                      f"'v3;window_days=90' AS state_key, customer_id, {cols} FROM feature_state")
    assert stored_state(store, tables, S[3], 90) is None
    latest, state = latest_features(store, tables, S[4], S[3], window_days=90)
    assert state is None
    assert_same(latest.to_pandas(), customer_features(tables, S[4], window_days=90).to_pandas())
    write_state(store, feature_state(tables, S[4], window_days=90), S[4], 90)
    types = dict(store.raw.execute("SELECT column_name, data_type FROM "
                                   "information_schema.columns WHERE table_name = "
                                   "'feature_state'").fetchall())
    assert {types[m] for m in MONEY} == {"DECIMAL(38,6)"} and types["orders_total"] == "BIGINT"
    assert stored_state(store, tables, S[4], 90) is not None
    latest.release()
    store.close()
