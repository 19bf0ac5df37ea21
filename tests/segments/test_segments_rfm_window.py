"""RFM with ``[rfm] window_days``: F and M are scored among the buyers with an order in the
window; a buyer whose orders are all before it gets f_score = m_score = 1 (segflow.segments._rfm).

Before, the buyers with nothing in the window tied at frequency 0 / monetary 0 in the same
quantile population: with more than 1/bins of them, every in-window buyer had f_score >= 2,
and "New" and "Promising" (FM 1) could never hold anyone."""

from __future__ import annotations

import datetime as dt
import math

import ibis
import pandas as pd
import pytest

from segflow.config import SchemeSettings
from segflow.errors import SegflowError
from segflow.features import REQUIRED_TABLES, customer_features
from segflow.segments import assign, freeze_cutoffs, rfm_cut_points, rfm_scores
from segflow.store import Store

# 10 buyers, bins = 5. a-f have orders in the window; g-j bought only before it (frequency 0;
# h's return in the window makes its monetary negative). z never bought.
IDS = list("abcdefghij")
RECENCY = [1, 5, 10, 20, 40, 60, 200, 300, 400, 500]
FREQUENCY = [1, 3, 2, 1, 5, 1, 0, 0, 0, 0]
MONETARY = [10.0, 90.0, 40.0, 25.0, 300.0, 10.0, 0.0, -5.0, 0.0, 0.0]

# Worked out by hand, score = 1 + floor(5 * w / n):
# R over the 10 buyers (w = buyers with more days): a 9 -> 5, b 8 -> 5, c 7 -> 4, d 6 -> 4,
#   e 5 -> 3, f 4 -> 3, g 3 -> 2, h 2 -> 2, i 1 -> 1, j 0 -> 1.
# F over the 6 in-window buyers (n = 6): frequency 1 (a, d, f) w 0 -> 1; 2 (c) w 3 -> 1 +
#   floor(15/6) = 3; 3 (b) w 4 -> 1 + floor(20/6) = 4; 5 (e) w 5 -> 1 + floor(25/6) = 5.
# M over the same 6: 10 (a, f) w 0 -> 1; 25 (d) w 2 -> 1 + floor(10/6) = 2; 40 (c) w 3 -> 3;
#   90 (b) w 4 -> 4; 300 (e) w 5 -> 5.
# g-j: F = M = 1 directly. (The old rule, n = 10 with four zeros: a's f_score was
#   1 + floor(5 * 4 / 10) = 3.)
WANT = {  # customer: (r, f, m, fm)
    "a": (5, 1, 1, 1), "b": (5, 4, 4, 4), "c": (4, 3, 3, 3), "d": (4, 1, 2, 1),
    "e": (3, 5, 5, 5), "f": (3, 1, 1, 1), "g": (2, 1, 1, 1), "h": (2, 1, 1, 1),
    "i": (1, 1, 1, 1), "j": (1, 1, 1, 1),
}


def _features() -> ibis.Table:
    return ibis.memtable({
        "customer_id": [*IDS, "z"],
        "recency_days": [*RECENCY, None],
        "frequency": [*FREQUENCY, 0],
        "monetary": [*MONETARY, 0.0],
    })


def _scores(table: ibis.Table) -> dict[str, tuple]:
    df = table.to_pandas().set_index("customer_id").sort_index()
    cols = ["r_score", "f_score", "m_score", "fm_score"]
    return {c: tuple(None if pd.isna(v) else int(v) for v in df.loc[c, cols]) for c in df.index}


def test_f_and_m_are_quantiles_of_the_buyers_in_the_window():
    got = _scores(rfm_scores(_features(), bins=5))
    assert got == {**WANT, "z": (None, None, None, None)}


def test_new_and_promising_hold_recent_one_order_buyers():
    t = _features()
    scored = rfm_scores(t, bins=5)
    from segflow.segments import rfm_segment_expr

    seg = scored.mutate(segment=rfm_segment_expr(scored)).to_pandas().set_index("customer_id")
    assert seg.loc["a", "segment"] == "New"  # bought yesterday, one order of 10
    assert seg.loc["d", "segment"] == "Promising"  # r 4, f 1, m 2
    assert seg.loc["z", "segment"] == "No purchase yet"
    assert set(seg.loc[["i", "j"], "segment"]) == {"Lost"}
    # the same through a scheme
    out = assign(SchemeSettings(name="rfm", kind="rfm"), t).to_pandas().set_index("customer_id")
    assert out.loc["a", "segment"] == "New" and out.loc["d", "segment"] == "Promising"


def test_ntile_bins_only_the_buyers_in_the_window():
    # F: a, d, f (1), c (2), b (3), e (5) in ntile(5) of 6 by value then id: sizes 2, 1, 1, 1, 1
    # M: a, f (10), d (25), c (40), b (90), e (300)
    got = _scores(rfm_scores(_features(), bins=5, method="ntile"))
    f = {c: got[c][1] for c in IDS}
    m = {c: got[c][2] for c in IDS}
    assert f == {"a": 1, "d": 1, "f": 2, "c": 3, "b": 4, "e": 5, "g": 1, "h": 1, "i": 1, "j": 1}
    assert m == {"a": 1, "f": 1, "d": 2, "c": 3, "b": 4, "e": 5, "g": 1, "h": 1, "i": 1, "j": 1}


def test_cut_points_are_taken_over_the_buyers_in_the_window():
    t = _features()
    cuts = rfm_cut_points(t, bins=5)
    # c_k: smallest value v with 5 * (customers with a value <= v, or >= v for days) >= k * n
    assert cuts == {"recency_days": [400.0, 200.0, 40.0, 10.0],
                    "frequency": [1.0, 1.0, 2.0, 3.0],
                    "monetary": [10.0, 25.0, 40.0, 90.0]}
    assert _scores(rfm_scores(t, bins=5, cut_points=cuts)) == _scores(rfm_scores(t, bins=5))


def test_fixed_cut_points_never_score_a_buyer_outside_the_window_above_1():
    # every value is better than these cut points, 0 and -5 included: the in-window buyers
    # score 5, the buyers outside the window still 1
    cuts = {"recency_days": [1000, 900, 800, 700], "frequency": [-1, -1, -1, -1],
            "monetary": [-10.0, -9.0, -8.0, -7.0]}
    got = _scores(rfm_scores(_features(), bins=5, cut_points=cuts))
    for c in "abcdef":
        assert got[c] == (5, 5, 5, 5), c
    for c in "ghij":
        assert got[c] == (5, 1, 1, 1), c


def test_server_row_scores_follow_the_same_rule():
    from segflow.server._scorer import _rfm_scorer

    u = ibis.table({"customer_id": "string", "recency_days": "int64", "frequency": "int64",
                    "monetary": "float64"}, name="row")
    cuts = rfm_cut_points(_features(), bins=5)
    score = _rfm_scorer(SchemeSettings(name="rfm", kind="rfm"), cuts, u)
    for c, r, f, m in zip(IDS, RECENCY, FREQUENCY, MONETARY, strict=True):
        row = {"customer_id": c, "recency_days": r, "frequency": f, "monetary": m}
        got = score(row)
        assert (got["r_score"], got["f_score"], got["m_score"], got["fm_score"]) == WANT[c], c
    negative = {"recency_days": [1000, 900, 800, 700], "frequency": [-1, -1, -1, -1],
                "monetary": [-10.0, -9.0, -8.0, -7.0]}
    out = _rfm_scorer(SchemeSettings(name="rfm", kind="rfm"), negative, u)(
        {"customer_id": "g", "recency_days": 200, "frequency": 0, "monetary": 0.0})
    assert (out["f_score"], out["m_score"]) == (1, 1)


def test_no_buyer_in_the_window():
    t = _features().filter(ibis._.frequency == 0)
    cuts = rfm_cut_points(t, bins=5)
    assert cuts["frequency"] == [math.inf] * 4 and cuts["monetary"] == [math.inf] * 4
    got = _scores(rfm_scores(t, bins=5))
    assert {c: got[c][1:3] for c in "ghij"} == dict.fromkeys("ghij", (1, 1))
    assert _scores(rfm_scores(t, bins=5, cut_points=cuts)) == got
    with pytest.raises(SegflowError, match="with a purchase"):
        rfm_cut_points(_features().filter(ibis._.recency_days.isnull()), bins=5)


# -- from transactions: the features' frequency, with and without the window ---------------
def _store(rows: list[tuple[str, str, str, float, bool]]) -> Store:
    store = Store(":memory:")
    tx = pd.DataFrame(rows, columns=["transaction_id", "customer_id", "ts", "amount", "is_return"])
    tx["ts"] = pd.to_datetime(tx["ts"])
    store.raw.register("_tx", tx)
    store.raw.execute("INSERT INTO transactions (transaction_id, customer_id, ts, amount, "
                      "is_return) SELECT * FROM _tx")
    store.raw.unregister("_tx")
    return store


ROWS = [
    ("n1", "new", "2024-06-29", 10.0, False),  # one small order two days before s
    ("p1", "prom", "2024-06-10", 10.0, False),  # r 4, m tied with new
    *((f"v{i}", "vip", f"2024-0{i}-05", 200.0, False) for i in range(2, 7)),
    *((f"m{i}", "mid", f"2024-0{i}-15", 60.0, False) for i in range(4, 7)),
    ("z1", "zero", "2024-05-20", 0.0, False),  # a free order: an order, monetary 0
    ("r1", "ret", "2024-05-21", 30.0, True),  # returns only: no purchase
    *((f"o{i}", f"old{i}", "2023-03-01", 500.0, False) for i in range(4)),  # before the window
    ("o9", "old0", "2024-06-01", 40.0, True),  # old0: a return in the window (monetary < 0)
]
S = dt.date(2024, 7, 1)


def test_run_features_with_a_window_put_recent_buyers_in_new_and_promising():
    store = _store(ROWS)
    try:
        tables = {n: store.table(n) for n in REQUIRED_TABLES}
        features = customer_features(tables, S, window_days=90)
        df = features.to_pandas().set_index("customer_id")
        assert (df.loc[[f"old{i}" for i in range(4)], "frequency"] == 0).all()
        assert df.loc["old0", "monetary"] == -40.0
        seg = assign(SchemeSettings(name="rfm", kind="rfm"), features).to_pandas()
        seg = seg.set_index("customer_id")["segment"]
        # 4 of the 9 buyers (more than 1/5) have nothing in the window; before, their tie at
        # 0 took f_score = m_score = 1 and every recent buyer had fm_score >= 2
        assert seg["new"] == "New"
        assert seg["prom"] == "Promising"
        assert seg["ret"] == "No purchase yet"
        scores = _scores(rfm_scores(features))
        for i in range(4):
            assert scores[f"old{i}"][1:3] == (1, 1)
        # frozen at S (also scoring the buyers outside the window with 1 on F and M)
        frozen = freeze_cutoffs([SchemeSettings(name="f", kind="rfm", cutoffs="reference",
                                                reference_snapshot=S)], tables, window_days=90)
        again = assign(frozen[0], features).to_pandas().set_index("customer_id")["segment"]
        assert again.sort_index().equals(seg.sort_index())
    finally:
        store.close()


def test_without_a_window_every_buyer_has_an_order_so_nothing_changes():
    """Without window_days frequency is the number of orders in all history: at least 1 for
    every customer with a purchase (a zero-value order is an order), and a customer with only
    returns has no purchase (null recency_days and null scores). So every buyer is in the F
    and M population, as before the window rule."""
    store = _store(ROWS)
    try:
        tables = {n: store.table(n) for n in REQUIRED_TABLES}
        df = customer_features(tables, S).to_pandas().set_index("customer_id")
        buyers = df[df["recency_days"].notna()]
        assert (buyers["frequency"] >= 1).all()
        assert df.loc["zero", "frequency"] == 1 and df.loc["zero", "monetary"] == 0.0
        assert pd.isna(df.loc["ret", "recency_days"]) and df.loc["ret", "frequency"] == 0
    finally:
        store.close()


def test_a_reference_snapshot_without_a_buyer_in_the_window_is_refused():
    store = _store([(f"o{i}", f"old{i}", "2023-03-01", 50.0 + i, False) for i in range(3)])
    try:
        tables = {n: store.table(n) for n in REQUIRED_TABLES}
        scheme = SchemeSettings(name="f", kind="rfm", cutoffs="reference", reference_snapshot=S)
        with pytest.raises(SegflowError, match="window_days"):
            freeze_cutoffs([scheme], tables, window_days=90)
        assert freeze_cutoffs([scheme], tables)[0].cut_points["frequency"] == [1.0] * 4
    finally:
        store.close()
