"""Top category / main channel: spend summed exactly, so equal spends tie (alphabetical)."""

from __future__ import annotations

import datetime as dt

import ibis

from segflow.features._purchases import top_share
from segflow.features._window import Frame


def _lines(rows: list[tuple[str, str, float]]) -> ibis.Table:
    ts = dt.datetime(2024, 3, 1)
    return ibis.memtable({
        "customer_id": [r[0] for r in rows], "category": [r[1] for r in rows],
        "amount": [r[2] for r in rows], "ts": [ts] * len(rows), "_buy": [True] * len(rows)})


def test_equal_spends_tie_whatever_the_floating_point_sum_and_go_to_the_first_value():
    # c1: B's 0.1 + 0.2 is 0.30000000000000004 in doubles, more than A's 0.3: a tie in money
    # c2: 0.1 + 0.2 + 0.3 in B against 0.6 in A, lines in the other order
    # c3: a real difference of a millionth
    lines = _lines([("c1", "B", 0.1), ("c1", "B", 0.2), ("c1", "A", 0.3),
                    ("c2", "A", 0.6), ("c2", "B", 0.3), ("c2", "B", 0.2), ("c2", "B", 0.1),
                    ("c3", "A", 1.0), ("c3", "B", 1.000001),
                    # huge currencies: 5e13 (a millionth of it overflows 64-bit integers)
                    ("c4", "B", 5e13), ("c4", "B", 5e13), ("c4", "A", 1e14)])
    frame = Frame(snapshot=dt.date(2024, 4, 1), window_days=None)
    got = top_share(lines, frame, "category", "top_category", "category_count").to_pandas()
    got = got.set_index("customer_id").sort_index()
    assert got["top_category"].tolist() == ["A", "A", "B", "A"]
    assert got["top_category_share"].tolist()[:2] == [0.5, 0.5]
    assert abs(got.loc["c3", "top_category_share"] - 1.000001 / 2.000001) < 1e-15
    assert got.loc["c4", "top_category_share"] == 0.5
    assert got["category_count"].tolist() == [2, 2, 2, 2]
