"""The stored aggregates' money does not depend on the order of rows: sums are exact decimals
of six places (segflow.features.money_sum), stored as the double nearest the exact sum.

The amounts are chosen so that float64 sums differ by order: 0.1 + 0.2 + 0.3 is
0.6000000000000001 and 0.3 + 0.2 + 0.1 is 0.6; DuckDB sums a small group in row order, so
before the exact sums the two orders below stored different revenue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 2, 1)
AMOUNTS = ["0.1", "0.2", "0.3", "1000000000.01", "-1000000000", "0.07"]


def _transactions(order: list[int]) -> pd.DataFrame:
    rows = [("c1", dt.datetime(2023, 12, 1 + i), float(AMOUNTS[i])) for i in order]
    rows += [("c2", dt.datetime(2024, 1, 10 + i), float(AMOUNTS[i])) for i in order]
    return pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])


def _exact(amounts: list[str]) -> float:
    return float(sum(Decimal(a) for a in amounts))


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [3, 0, 4, 1, 5, 2]])
def test_revenue_is_the_exact_sum_in_any_row_order(order):
    from segflow.summaries import revenue_at_snapshots

    con = ibis.duckdb.connect()
    got = revenue_at_snapshots(con.create_table("t", _transactions(order)), [D1, D2]).execute()
    got = got.set_index(["customer_id", "snapshot_date"]).sort_index()
    c1 = got.loc[("c1", pd.Timestamp(D2))]
    # every line of c1 is before D1 (December); c2's lines are in January
    assert c1["revenue_all_time"] == _exact(AMOUNTS)
    assert got.loc[("c1", pd.Timestamp(D1)), "revenue_all_time"] == _exact(AMOUNTS)
    assert got.loc[("c2", pd.Timestamp(D2)), "revenue_12m"] == _exact(AMOUNTS)
    assert ("c2", pd.Timestamp(D1)) not in got.index


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0]])
def test_segment_revenue_and_clv_are_exact_sums_in_any_row_order(order):
    """Three customers of one segment with revenue 0.1, 0.2, 0.3 (and CLV the same): the
    segment's revenue is 0.6 (the float sums give 0.6000000000000001 in one order)."""
    from segflow.summaries import _cells

    con = ibis.duckdb.connect()
    ids = [f"c{i}" for i in order]
    vals = [float(AMOUNTS[i]) for i in order]
    a = pd.DataFrame({"scheme": "s", "snapshot_date": D1, "customer_id": ids, "segment": "hi",
                      "segment_rank": pd.array([1] * 3, "Int64")})
    rv = pd.DataFrame({"customer_id": ids, "snapshot_date": D1, "revenue_all_time": vals,
                       "revenue_12m": vals})
    sc = pd.DataFrame({"s_cid": ids, "s_date": D1, "p_alive": vals, "expected_purchases": vals,
                       "clv": vals})
    assignments, revenue, scores = (con.create_table(n, f) for n, f in (("a", a), ("rv", rv), ("sc", sc)))
    keyed = _cells.keys(assignments).cache()
    coded = _cells.codes(assignments, ["s"]).cache()
    rows = _cells.coded_rows(assignments, keyed, coded, [D1])
    table = coded.execute()
    st = _cells.states(rows, revenue, scores, keyed, _cells.Packing.of(table, ["s"]), [D1]).cache()
    seg = _cells.segment_rows(st, table, ["s"], {"s": [D1]})
    assert len(seg) == 1
    row = seg.iloc[0]
    want = _exact(AMOUNTS[:3])
    assert want == 0.6
    for col in ("revenue_12m", "revenue_all_time", "clv", "expected_purchases"):
        assert row[col] == want, col
    assert row["mean_p_alive"] == want / 3


def test_profile_means_are_settled_to_twelve_significant_digits():
    from segflow.segments._profile import settled

    assert settled(0.9374999999999998) == settled(0.9375) == 0.9375
    assert settled(85425.49999999997) == settled(85425.50000000001) == 85425.5
    s = settled(pd.Series([0.0, float("nan"), -1.23456789012345e-7, 1e300]))
    assert s.iloc[0] == 0.0 and pd.isna(s.iloc[1])
    assert s.iloc[2] == -1.23456789012e-7 and s.iloc[3] == 1e300


#: Doubles and the decimal every engine must make of them: below 2^53 the value's shortest
#: text (what Python's repr and DuckDB write) rounded to a millionth, half away from zero;
#: from 2^53 the whole number. DuckDB's own cast multiplies in double arithmetic and gave,
#: before features.exact_decimal, 8675193777.200001, 3358590236659.999744,
#: 10000000000000000905.969664, 1234567890123.449856, 98765432109.876544 and 8.077863;
#: Spark's (Java's Double.toString) 1152921504606846980 for 2^60, 1152921504606846976.
EXACT_TEXT = [
    (8675193777.2, "8675193777.200000"),
    (3358590236660.0, "3358590236660.000000"),
    (1e19, "10000000000000000000.000000"),
    (1234567890123.45, "1234567890123.450000"),
    (98765432109.87654, "98765432109.876540"),
    (8.0778635, "8.077864"),
    (-1.0000005, "-1.000001"),
    (0.1 + 0.2, "0.300000"),
    (19.99, "19.990000"),
    (-1e12, "-1000000000000.000000"),
    (85965848407352992.0, "85965848407352992.000000"),
    (-(2.0**60), "-1152921504606846976.000000"),
]


def test_money_is_the_decimal_of_the_doubles_shortest_text():
    from segflow.features._window import EXACT_SCORE, exact_decimal, money

    con = ibis.duckdb.connect()
    t = con.create_table("m", pd.DataFrame({"x": [v for v, _ in EXACT_TEXT] + [None]}))
    got = con.execute(t.select(m=money(t.x), s=exact_decimal(t.x, EXACT_SCORE)))
    assert [str(d) for d in got["m"][:-1]] == [want for _, want in EXACT_TEXT]
    assert got["m"].iloc[-1] is None or pd.isna(got["m"].iloc[-1])
    # twelve places: 1234567.1234567 is 1234567.123456700000, not its double's expansion
    assert str(got["s"][3]) == "1234567890123.450000000000"
    assert str(got["s"][5]) == "8.077863500000"


def test_revenue_of_huge_amounts_is_the_exact_sum():
    """Lines of 1,234,567,890,123.45 (15 digits, kept by the ingest): a customer's revenue is
    the double nearest the exact sum of the lines as written; DuckDB's own cast made each
    line 1234567890123.449856 and the sum another double."""
    from segflow.summaries import revenue_at_snapshots

    amounts = ["1234567890123.45", "1234567890123.45", "1234567890123.45", "0.1", "8675193777.2"]
    rows = [("c1", dt.datetime(2023, 12, 1 + i), float(a)) for i, a in enumerate(amounts)]
    con = ibis.duckdb.connect()
    t = con.create_table("t", pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]))
    got = revenue_at_snapshots(t, [D1]).execute().iloc[0]
    # 3 x 1,234,567,890,123.45 + 0.1 + 8,675,193,777.2 = 3,712,378,864,147.65
    assert got["revenue_all_time"] == _exact(amounts) == 3712378864147.65


def test_profile_means_are_exact_where_values_cancel():
    """A segment holding a +1e12 order and a -1e12 refund: the mean of 0.1, 0.2 and the two
    is 0.075 whatever the order of rows (a float64 sum in row order gives 0.0625: the 0.1
    is lost against 1e12), and the base mean too."""
    from segflow.segments._profile import exact_mean, profile_segments

    values = [1e12, 0.1, 0.2, -1e12]
    con = ibis.duckdb.connect()
    f = con.create_table("f", pd.DataFrame({"customer_id": list("abcd"), "monetary": values}))
    a = con.create_table("a", pd.DataFrame({"customer_id": list("abcd"), "segment": "s"}))
    means = set()
    for order in (values, values[::-1], [0.1, 1e12, -1e12, 0.2]):
        g = con.create_table("g", pd.DataFrame({"monetary": order}), overwrite=True)
        means.add(float(con.execute(g.aggregate(m=exact_mean(g.monetary)))["m"][0]))
    assert means == {0.075}
    # large amounts are their decimals as written (a double of 2e12 is 0.0005 apart from its
    # neighbours): (2,000,000,000,000.1 - 1,999,999,999,999.8 + 0.3) / 3 = 0.2 (the doubles'
    # own binary values give 0.2001)
    g = con.create_table("g", pd.DataFrame({"monetary": [2000000000000.1, -1999999999999.8, 0.3]}),
                         overwrite=True)
    assert round(float(con.execute(g.aggregate(m=exact_mean(g.monetary)))["m"][0]), 15) == 0.2
    assert con.execute(f.aggregate(m=f.monetary.mean()))["m"][0] != 0.075  # a float mean
    prof = profile_segments(f, a, numeric=["monetary"], categorical=[])
    assert prof.means.loc["s", "monetary"] == 0.075
    assert prof.base.loc["mean", "monetary"] == 0.075


def test_stored_rule_profiles_means_are_exact_where_values_cancel():
    """The run's profiles of rule-based schemes (summaries._profiles.rule_profiles, all
    schemes in one query): the same exact mean, 0.075, in the segment and in the base."""
    from segflow.summaries._profiles import rule_profiles

    con = ibis.duckdb.connect()
    ids = list("abcd")
    tables = {
        "customer_features": con.create_table("cf", pd.DataFrame({
            "snapshot_date": D1, "customer_id": ids, "monetary": [1e12, 0.1, 0.2, -1e12]})),
        "segment_assignments": con.create_table("sa", pd.DataFrame({
            "scheme": "s", "snapshot_date": D1, "customer_id": ids, "segment": "x",
            "segment_rank": pd.array([1] * 4, "Int64")})),
    }

    class Tables:
        def tables(self):
            return list(tables)

        def table(self, name):
            return tables[name]

    _, out = rule_profiles(Tables(), ["s"])
    long = out["s"][1].set_index("feature")
    assert long.loc["monetary", "mean"] == long.loc["monetary", "base_mean"] == 0.075


def _shape_cases() -> dict[str, list]:
    """Three groups of columns that each need one part of exact_mean's general form."""
    return {
        "g": ["a", "a", "a", "b", "b", "c"],
        "small": [0.1, 0.2, 0.3, 1.25, -3.5, 4095.75],  # every value below 4,096
        "large": [0.1, 4096.1, 98765.4321, -123456.7, 0.2, 2000000000000.1],  # text sums too
        "nulls": [0.1, None, 0.3, None, None, 0.7],
        "odd": [0.5, float("nan"), 0.25, 1e24, 0.5, float("inf")],
        "ints": [3, 4, 5, -7, 0, 9],
        "huge": [2**62, 2**62, 1, 5, 6, -(2**63)],  # sums beyond 2^53: 38-digit decimals
        "flag": [True, False, True, None, True, False],
    }


@pytest.mark.parametrize("threads", [1, 4])
def test_exact_means_of_a_known_shape_are_the_general_forms_doubles(threads):
    """exact_mean with the MeanShape found by mean_shapes (the profiles' queries) leaves out
    sums the values do not need and gives the same double as the general form, per group,
    on any thread count; the means are the decimal means of the values as written."""
    from segflow.segments._means import ANY_VALUES, MeanShape, exact_mean, mean_shapes
    from segflow.segments._profile import settled

    cases = _shape_cases()
    con = ibis.duckdb.connect()
    con.raw_sql(f"SET threads = {threads}")
    t = con.create_table("t", pa.table(cases))  # (pandas would make the NaN a null)
    cols = [c for c in cases if c != "g"]
    shapes = mean_shapes(t, cols, len(cases["g"]))
    assert shapes["small"] == MeanShape(nulls=False, odd=False, large=False)
    assert shapes["large"] == MeanShape(nulls=False, odd=False, large=True)
    assert shapes["nulls"] == MeanShape(nulls=True, odd=False, large=False)
    assert shapes["odd"] == MeanShape(nulls=False, odd=True, large=False)
    assert shapes["ints"] == MeanShape(nulls=False, odd=False, large=False, small_sums=True)
    assert shapes["huge"] == MeanShape(nulls=False, odd=False, large=False, small_sums=False)
    assert shapes["flag"] == MeanShape(nulls=True, odd=False, large=False, small_sums=True)
    size = t.count()
    query = t.group_by("g").aggregate(
        **{f"full_{c}": exact_mean(t[c], ANY_VALUES) for c in cols},
        **{f"lean_{c}": exact_mean(t[c], shapes[c], size) for c in cols},
    ).order_by("g")
    got = con.execute(query)
    for c in cols:
        assert np.array_equal(got[f"full_{c}"], got[f"lean_{c}"], equal_nan=True), c
    # the values, as the profiles keep them (12 significant digits): the decimal means of
    # the values as written (independent of segflow's sums)
    for col in ("small", "large", "nulls", "ints"):
        for k, group in enumerate("abc"):
            vals = [Decimal(repr(v)) for v, g in zip(cases[col], cases["g"], strict=True)
                    if g == group and v is not None]
            if not vals:  # no value in the group: no mean
                assert pd.isna(got[f"lean_{col}"][k]), (col, group)
                continue
            want = float(sum(vals) / len(vals))
            assert settled(got[f"lean_{col}"][k]) == settled(want), (col, group)
    assert got["lean_huge"][0] == float((2 * 2**62 + 1) / 3)
    # group a holds a NaN (the float mean, NaN); b and c hold 1e24 and inf: float means too
    assert np.isnan(got["lean_odd"][0]) and got["lean_odd"][1] == 5e23 and got["lean_odd"][2] == np.inf
    # a clean column's mean has no NaN test nor count of its own in the query
    sql = ibis.to_sql(t.group_by("g").aggregate(m=exact_mean(t.small, shapes["small"], size)))
    assert "isnan" not in sql.lower() and "count(\"t0\".\"small\")" not in sql.lower()
