"""customer_features on Spark local[1] equals customer_features on DuckDB (engine parity)."""

from __future__ import annotations

import pandas as pd
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
        # computed once on Spark, the RFM scores' queries below read it (not the features again)
        on_spark = on_spark.cache()
        got = on_spark.to_pandas().set_index("customer_id").sort_index()
        spark_scores = _rfm(on_spark)
    finally:
        engine.close()
    want_t = customer_features({n: store.table(n) for n in REQUIRED_TABLES}, S, window_days=180)
    want = want_t.to_pandas().set_index("customer_id").sort_index()
    assert len(want) > 30
    assert_same_features(got, want)
    # RFM scores with the window (F and M among the buyers with an order in it): same on both
    outside = want["recency_days"].notna() & (want["frequency"] == 0)
    assert outside.sum() >= 3
    duck_scores = _rfm(want_t)
    assert spark_scores.keys() == duck_scores.keys()
    for key, frame in duck_scores.items():
        if key == "cuts":
            assert spark_scores[key] == frame
            continue
        pd.testing.assert_frame_equal(spark_scores[key], frame, check_dtype=False, obj=key)
        assert (frame.loc[outside[outside].index, ["f_score", "m_score"]] == 1).all().all()
    store.close()


def _rfm(features) -> dict:  # noqa: ANN001
    """RFM scores of ``features`` by quantile, ntile and cut points, and the cut points."""
    from segflow.segments import rfm_cut_points, rfm_scores

    cols = ["r_score", "f_score", "m_score", "fm_score"]
    cuts = rfm_cut_points(features, bins=5)
    out: dict = {"cuts": cuts}
    for key, kw in (("quantile", {}), ("ntile", {"method": "ntile"}), ("cut", {"cut_points": cuts})):
        df = rfm_scores(features, bins=5, **kw).to_pandas().set_index("customer_id").sort_index()
        out[key] = df[cols].astype("Int64")
    return out


def test_money_is_the_same_decimal_on_spark_and_duckdb():
    """features.exact_decimal on Spark local[1]: the decimals worked out by hand (the double's
    shortest text to the millionth, from 2^53 its whole number), as on DuckDB
    (tests/summaries/test_summaries_exact_money.py); Spark's own cast made 2^60
    1152921504606846980."""
    require_spark()
    import ibis
    import pandas as pd
    from tests.summaries.test_summaries_exact_money import EXACT_TEXT

    from segflow.engine import spark_session
    from segflow.features import exact_decimal
    from segflow.features._window import EXACT_MONEY

    frame = pd.DataFrame({"i": range(len(EXACT_TEXT)), "x": [v for v, _ in EXACT_TEXT]})
    con = ibis.pyspark.connect(spark_session("local[1]"))
    t = ibis.memtable(frame)
    got = con.execute(t.select("i", m=exact_decimal(t.x, EXACT_MONEY).cast("string")).order_by("i"))
    assert got["m"].tolist() == [want for _, want in EXACT_TEXT]
