"""The stored aggregates' money does not depend on the order of rows: sums are exact decimals
of six places (segflow.features.money_sum), stored as the double nearest the exact sum.

The amounts are chosen so that float64 sums differ by order: 0.1 + 0.2 + 0.3 is
0.6000000000000001 and 0.3 + 0.2 + 0.1 is 0.6; DuckDB sums a small group in row order, so
before the exact sums the two orders below stored different revenue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import ibis
import pandas as pd
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
