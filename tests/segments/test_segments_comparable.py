"""The rounding before scoring (:func:`segflow.segments._scores.comparable`) gives the same
bits on DuckDB, on Spark and in the server's row evaluator: half cents included (an average
order value of 1.005 was 1.00 on DuckDB's ``round`` and 1.01 on Spark's)."""

from __future__ import annotations

import math

import ibis
import numpy as np
import pandas as pd
import pytest
from tests._engines import require_spark

from segflow.segments._scores import comparable


def _values() -> list[float | None]:
    rng = np.random.default_rng(5)
    # averages of cent amounts over a few orders: many fall on half cents and below
    sums = rng.integers(1, 10_000_00, 4_000) / 100
    orders = rng.integers(1, 9, 4_000)
    special = [10.005, 1.005, 0.125, -2.675, 2.5, -0.005, 0.0, 1e20, -1e20, 45035996273704.96,
               1e15, 10 / 3, float("nan"), None]
    return [*special, *(sums / orders).tolist()]


def _expected(x: float | None, digits: int) -> float | None:
    """Independent: round half up of ``x * 10^digits`` as a double, what the docstring says."""
    if x is None or math.isnan(x):
        return x
    scale = 10.0 ** digits
    if abs(x) >= 2.0 ** 52 / scale:
        return x
    return float(math.floor(x * scale + 0.5)) / scale


def _frame() -> pd.DataFrame:
    values = _values()
    return pd.DataFrame({"i": range(len(values)), "avg_order_value": values,
                         "tenure_years": values})


def _engine_result(con) -> pd.DataFrame:
    # a view (temporary on Spark): no managed table left in ./spark-warehouse to collide
    # with the next run's
    t = con.create_view("f", ibis.memtable(_frame()), overwrite=True)
    expr = t.select("i", c=comparable(t, "avg_order_value"), f=comparable(t, "tenure_years"))
    return expr.to_pandas().sort_values("i", ignore_index=True)


def _bits(values) -> list[object]:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v).hex()
            for v in values]


def test_rounding_is_the_documented_double_arithmetic_on_duckdb_and_in_the_row_evaluator():
    from segflow.server._fast_eval import compile_row

    con = ibis.duckdb.connect()
    got = _engine_result(con)
    values = _values()
    half = sum(1 for v in values if v is not None and not math.isnan(v)
               and abs(v * 100 - math.floor(v * 100) - 0.5) < 1e-9)
    assert half > 200  # the half cents are there to be rounded
    assert _bits(got["c"]) == _bits([_expected(v, 2) for v in values])
    assert _bits(got["f"]) == _bits([_expected(v, 9) for v in values])
    assert got["c"].iloc[0] == 10.01 and got["c"].iloc[1] == 1.0 and got["c"].iloc[3] == -2.67
    t = con.table("f")
    cents, nines = compile_row(comparable(t, "avg_order_value")), compile_row(
        comparable(t, "tenure_years"))
    rows = [{"avg_order_value": v, "tenure_years": v} for v in values]
    assert _bits([cents(r) for r in rows]) == _bits(got["c"])
    assert _bits([nines(r) for r in rows]) == _bits(got["f"])


@pytest.mark.spark
@pytest.mark.slow
def test_spark_rounds_to_the_same_bits_as_duckdb():
    require_spark()
    from segflow.engine import spark_session

    duck = _engine_result(ibis.duckdb.connect())
    session = spark_session("local[1]")
    spark = _engine_result(ibis.pyspark.connect(session))
    assert _bits(spark["c"]) == _bits(duck["c"])
    assert _bits(spark["f"]) == _bits(duck["f"])
    # Spark's own round of a double reads its shortest decimal text (1.005 -> 1.01), where
    # DuckDB's and the portable rounding read the double (1.00499999...: 1.00)
    own = session.createDataFrame(pd.DataFrame({"x": [1.005]})).selectExpr(
        "round(x, 2) AS r").toPandas()["r"].tolist()
    assert own == [1.01] and duck["c"].iloc[1] == 1.0
