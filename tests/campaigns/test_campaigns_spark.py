"""The campaign read-out gives the same numbers on Spark as on DuckDB (same Ibis code)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from tests._engines import require_spark

from segflow.campaigns import campaign_report

pytestmark = [pytest.mark.spark, pytest.mark.slow]



def test_campaign_report_on_spark_equals_duckdb(campaign_store):
    require_spark()
    from segflow.engine import Engine

    store = campaign_store.store
    engine = Engine("spark", store)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            duck = campaign_report(store, "c1", "value")
            spark = campaign_report(engine, "c1", "value")
        pd.testing.assert_frame_equal(duck.effect.to_pandas(), spark.effect.to_pandas(),
                                      check_dtype=False, rtol=1e-9)
        a = duck.migration.counts.sort_values(["arm", "from_segment", "to_segment"])
        b = spark.migration.counts.sort_values(["arm", "from_segment", "to_segment"])
        np.testing.assert_array_equal(a.customers.to_numpy(), b.customers.to_numpy())
    finally:
        engine.close()
