"""customer_features on Spark local[1] equals customer_features on DuckDB (engine parity)."""

from __future__ import annotations

import pytest
from tests._engines import require_spark
from tests.features._fixture import S, assert_same_features, make_tables, to_store

from segflow.features import REQUIRED_TABLES, customer_features
from segflow.store import Store

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_spark_features_equal_duckdb_features():
    require_spark()
    from segflow.engine import connect

    store = Store(":memory:")
    to_store(store, make_tables())
    engine = connect(store, "spark")
    try:
        on_spark = customer_features({n: engine.table(n) for n in REQUIRED_TABLES}, S, window_days=180)
        got = on_spark.to_pandas().set_index("customer_id").sort_index()
    finally:
        engine.close()
    want = customer_features({n: store.table(n) for n in REQUIRED_TABLES}, S, window_days=180)
    want = want.to_pandas().set_index("customer_id").sort_index()
    assert len(want) > 30
    assert_same_features(got, want)
    store.close()
