"""The all-schemes aggregates on integer keys (segflow.summaries._cells) equal a direct pandas
computation on a small hand-made case: customers entering, leaving and coming back, revenue
of customers unassigned at one side, a segment whose customers carry two ranks, scores at
the last snapshot only."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
SCHEMES = ["a", "b"]

ROWS = [  # scheme, snapshot, customer, segment, rank
    ("a", D1, "c1", "hi", 1), ("a", D1, "c2", "lo", 2), ("a", D1, "c3", "lo", 2),
    ("a", D2, "c1", "lo", 2), ("a", D2, "c3", "lo", 2), ("a", D2, "c4", "hi", 1),
    ("a", D3, "c1", "hi", 1), ("a", D3, "c2", "hi", 3), ("a", D3, "c4", "hi", 1),
    ("b", D1, "c1", "x", None), ("b", D1, "c2", "y", None),
    ("b", D2, "c2", "x", None), ("b", D2, "c3", "y", None),
    ("b", D3, "c3", "y", None), ("b", D3, "c5", "x", None),
]
REVENUE = [  # customer, snapshot, all time, 12 months
    ("c1", D1, 10.0, 10.0), ("c1", D2, 15.0, 15.0), ("c1", D3, 15.0, 5.0),
    ("c2", D1, 3.0, 3.0), ("c2", D2, 3.0, 3.0), ("c2", D3, 7.5, 4.5),
    ("c3", D2, 1.0, 1.0), ("c3", D3, 1.0, 1.0),
    ("c4", D3, 2.25, 2.25), ("c5", D2, 4.0, 4.0), ("c5", D3, 9.0, 9.0),
    ("c9", D3, 100.0, 100.0),  # never assigned: in no cell
]
SCORES = [("c1", 0.9, 1.5, 20.0), ("c2", 0.5, 0.5, 4.0), ("c4", 0.7, 1.0, 8.0), ("c5", 0.2, 0.1, 1.0)]
PAIRS = [(D1, D2), (D2, D3), (D1, D3)]


@pytest.fixture(scope="module", params=[None, 2], ids=["one-word", "a-word-per-scheme"])
def computed(request):
    """The cells with every scheme's code in one packed word, and with words of two bits
    (each scheme in its own word): the same rows (each test compares them with pandas)."""
    from segflow.summaries import _cells, _packing

    saved_bits = _packing.WORD_BITS
    _packing.WORD_BITS = request.param or saved_bits
    try:
        yield _computed(_cells)
    finally:
        _packing.WORD_BITS = saved_bits


def _computed(_cells):

    con = ibis.duckdb.connect()
    a = pd.DataFrame(ROWS, columns=["scheme", "snapshot_date", "customer_id", "segment", "segment_rank"])
    a["segment_rank"] = a["segment_rank"].astype("Int64")
    rv = pd.DataFrame(REVENUE, columns=["customer_id", "snapshot_date", "revenue_all_time", "revenue_12m"])
    sc = pd.DataFrame(SCORES, columns=["s_cid", "p_alive", "expected_purchases", "clv"]).assign(s_date=D3)
    assignments, revenue, scores = (con.create_table(n, f) for n, f in
                                    (("a", a), ("rv", rv), ("sc", sc)))
    keyed = _cells.keys(assignments).cache()
    coded = _cells.codes(assignments, SCHEMES).cache()
    days = [D1, D2, D3]
    rows = _cells.coded_rows(assignments, keyed, coded, days)
    table = coded.execute()
    st = _cells.states(rows, revenue, scores, keyed, _cells.Packing.of(table, SCHEMES), days).cache()
    seg = _cells.segment_rows(st, table, SCHEMES, {s: days for s in SCHEMES})
    tr = _cells.transition_rows(st, table, SCHEMES, {"a": PAIRS, "b": PAIRS[:2]})
    # the same pairs one at a time (a batch of joined states holds at most 1 row per side:
    # one pair each), as at 10M customers: the same rows
    saved = _cells.PAIR_BATCH_ROWS
    _cells.PAIR_BATCH_ROWS = 1
    try:
        one_by_one = _cells.transition_rows(st, table, SCHEMES, {"a": PAIRS, "b": PAIRS[:2]})
    finally:
        _cells.PAIR_BATCH_ROWS = saved
    pd.testing.assert_frame_equal(one_by_one, tr)
    return a, rv, sc, seg, tr


def test_segment_rows_equal_a_pandas_group_by(computed):
    a, rv, sc, seg, _ = computed
    j = a.merge(rv, on=["customer_id", "snapshot_date"], how="left")
    j = j.merge(sc.rename(columns={"s_cid": "customer_id", "s_date": "snapshot_date"}),
                on=["customer_id", "snapshot_date"], how="left")
    want = j.groupby(["scheme", "snapshot_date", "segment"], as_index=False).agg(
        segment_rank=("segment_rank", "min"), customers=("customer_id", "size"),
        revenue_12m=("revenue_12m", "sum"), revenue_all_time=("revenue_all_time", "sum"),
        scored_customers=("p_alive", "count"), mean_p_alive=("p_alive", "mean"), clv=("clv", "sum"))
    for frame in (seg, want):
        frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"])
    keys = ["scheme", "snapshot_date", "segment"]
    got = seg.set_index(keys).loc[list(want.set_index(keys).index)]
    assert len(seg) == len(want) == 11
    assert list(got["customers"]) == list(want["customers"])
    # "hi" of scheme a at D3 holds ranks 1 and 3: one row with the smaller rank
    hi = got.loc[("a", pd.Timestamp(D3), "hi")]
    assert hi["segment_rank"] == 1 and hi["customers"] == 3
    for col in ("revenue_12m", "revenue_all_time", "clv", "mean_p_alive", "scored_customers"):
        np.testing.assert_allclose(got[col].astype(float), want[col].astype(float), equal_nan=True)


def test_transition_rows_equal_a_pandas_outer_merge(computed):
    from segflow.summaries._cells import GONE, NEW

    a, rv, sc, _, tr = computed
    rev = rv.set_index(["customer_id", "snapshot_date"])
    clv = sc.set_index("s_cid")["clv"]
    want = []
    for scheme, pairs in (("a", PAIRS), ("b", PAIRS[:2])):
        s = a[a.scheme == scheme]
        for f, t in pairs:
            m = s[s.snapshot_date == f][["customer_id", "segment"]].merge(
                s[s.snapshot_date == t][["customer_id", "segment"]], on="customer_id", how="outer",
                suffixes=("_f", "_t"))
            m["from_segment"] = m["segment_f"].fillna(NEW)
            m["to_segment"] = m["segment_t"].fillna(GONE)
            r_t = [rev["revenue_all_time"].get((c, t), 0.0) for c in m.customer_id]
            r_f = [rev["revenue_all_time"].get((c, f), 0.0) for c in m.customer_id]
            m["revenue"] = np.subtract(r_t, r_f)
            m["revenue_12m"] = [rev["revenue_12m"].get((c, t), 0.0) for c in m.customer_id]
            m["clv"] = [clv.get(c, 0.0) if t == D3 else 0.0 for c in m.customer_id]
            m["scored"] = [int(t == D3 and c in clv.index) for c in m.customer_id]
            g = m.groupby(["from_segment", "to_segment"], as_index=False).agg(
                customers=("customer_id", "size"), revenue=("revenue", "sum"),
                revenue_12m=("revenue_12m", "sum"), clv=("clv", "sum"), scored_customers=("scored", "sum"))
            want.append(g.assign(scheme=scheme, from_date=f, to_date=t))
    want = pd.concat(want).sort_values(["scheme", "from_date", "to_date", "from_segment", "to_segment"],
                                       ignore_index=True)
    assert len(tr) == len(want)
    for col in ("scheme", "from_date", "to_date", "from_segment", "to_segment", "customers", "scored_customers"):
        assert list(tr[col]) == list(want[col]), col
    assert tr["scored_customers"].sum() > 0
    for col in ("revenue", "revenue_12m", "clv"):
        np.testing.assert_allclose(tr[col], want[col])
    # c2 of scheme a: absent at D2, back at D3 in "hi" with rank 3 -> counted in (new) -> hi
    cell = tr[(tr.scheme == "a") & (tr.from_date == D2) & (tr.to_date == D3) & (tr.from_segment == NEW)]
    assert cell["customers"].sum() == 1 and cell["revenue"].iloc[0] == pytest.approx(4.5)


def test_transitions_ending_at_the_latest_from_spells_equal_those_from_states(computed):
    """ending_transitions (change rows + per-bucket amounts, the new-month path) gives the
    rows of transition_rows for the pairs ending at D3."""
    from segflow.store._spells import spells
    from segflow.summaries import _cells

    a, rv, sc, _, tr = computed
    con = ibis.duckdb.connect()
    rows = con.create_table("rows", a.assign(scheme_version="1"))
    snaps = con.create_table("snaps", a[["scheme", "snapshot_date"]].drop_duplicates())
    sp = con.create_table("sp", spells(rows, snaps).execute())
    # the amounts per bucket: differences of the revenue before consecutive snapshots
    wide = rv.pivot(index="customer_id", columns="snapshot_date", values="revenue_all_time")
    wide = wide[[D1, D2, D3]].ffill(axis=1).fillna(0.0)
    steps = wide.diff(axis=1).fillna(wide)
    amounts = steps.stack().rename("amount").reset_index().rename(columns={"snapshot_date": "be"})
    keyed = _cells.keys(sp).cache()
    coded = _cells.codes(sp, SCHEMES).cache()
    table = coded.execute()
    am = con.create_table("am", amounts).join(keyed, "customer_id").select("k", "be", "amount")
    latest = _cells.states(_cells.coded_spells(sp, snaps, keyed, coded, [D3]),
                           con.create_table("rv", rv), con.create_table("sc", sc), keyed,
                           _cells.Packing.of(table, SCHEMES), [D3]).cache()
    pairs = {"a": [(D1, D3), (D2, D3)], "b": [(D2, D3)]}
    got = _cells.ending_transitions(_cells.spell_codes(sp, keyed, coded), latest, am, table,
                                    SCHEMES, pairs)
    want = tr[tr.to_date == D3].reset_index(drop=True)
    assert len(got) == len(want) == 11
    cols = ["scheme", "from_date", "to_date", "from_segment", "to_segment", "customers",
            "from_rank", "to_rank", "revenue", "revenue_12m", "clv", "scored_customers"]
    pd.testing.assert_frame_equal(got[cols], want[cols], check_dtype=False, atol=1e-12)
