"""Churn labels and training sets are identical on DuckDB and on Spark local[1]."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from tests._engines import require_spark
from tests.models.test_churn_synth import synth_transactions, to_arrow

from segflow.models._churn_data import (
    churn_training_set,
    eligible_customers,
    window_rates,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SNAPSHOTS = [dt.date(2023, 6, 1), dt.date(2023, 9, 1)]



def _orders_features(transactions):
    def at(snapshot):
        before = transactions.filter(transactions.ts < dt.datetime.combine(snapshot, dt.time()))
        return before.group_by("customer_id").aggregate(
            orders=before.count(), spend=before.amount.sum()
        )

    return at


def _outputs(engine):
    tx = engine.table("transactions")
    frame = churn_training_set(_orders_features(tx), tx, SNAPSHOTS, 60)
    frame["snapshot_date"] = frame["snapshot_date"].map(lambda v: pd.Timestamp(v).date())
    frame["churned"] = frame["churned"].astype(int)
    frame["orders"] = frame["orders"].astype(int)
    eligible = sorted(eligible_customers(tx, SNAPSHOTS[0]).to_pandas()["customer_id"])
    return frame, eligible, window_rates(tx, SNAPSHOTS, 60)


def test_duckdb_and_spark_agree(memory_store):
    require_spark()
    from segflow.engine import connect

    tx = synth_transactions(300, seed=8, end=dt.date(2024, 1, 1))
    tx["is_return"] = tx["is_return"].astype(object)
    tx.loc[tx.index[::50], "is_return"] = None  # nulls must mean "not a return" on both
    memory_store.append("transactions", to_arrow(tx))
    duck = connect(memory_store, "duckdb")
    spark = connect(memory_store, "spark")
    try:
        on_duckdb = _outputs(duck)
        on_spark = _outputs(spark)
    finally:
        spark.close()
    pd.testing.assert_frame_equal(on_duckdb[0], on_spark[0], check_dtype=False)
    assert on_duckdb[1] == on_spark[1]
    assert on_duckdb[2] == pytest.approx(on_spark[2])
    assert 0 < on_duckdb[0].churned.mean() < 1
