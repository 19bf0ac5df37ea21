"""Transition matrices against independent counts, revenue sums and hand-made fixtures."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest
from tests.migration._migration_fixtures import (
    DATES,
    count_by_hand,
    make_store,
    random_assignments,
    random_transactions,
    tiny_assignments,
)

from segflow.errors import InputError, SegflowError
from segflow.migration import GONE, NEW, pooled_transition_matrix, row_intervals, transition_matrix


@pytest.fixture(scope="module")
def random_store():
    a, t = random_assignments(), random_transactions()
    store = make_store(a, t)
    yield store, a, t
    store.close()


def _as_dict(tm) -> dict[tuple[str, str], int]:
    c = tm.to_pandas()
    c = c[c["customers"] > 0]
    return {
        (f, t): int(n)
        for f, t, n in zip(c["from_segment"], c["to_segment"], c["customers"], strict=True)
    }


def test_tiny_fixture_hand_counts():
    store = make_store(tiny_assignments())
    a = store.table("segment_assignments")
    tm = transition_matrix(a, scheme="tier", from_date=DATES[0], to_date=DATES[1])
    # c1 Gold->Gold, c2 Bronze->Silver, c3 Silver->gone, c4 new->Bronze, c5 Silver->gone,
    # c6 Gold->gone, c7 Gold->Silver
    assert _as_dict(tm) == {
        ("Gold", "Gold"): 1,
        ("Bronze", "Silver"): 1,
        ("Silver", GONE): 2,
        (NEW, "Bronze"): 1,
        ("Gold", GONE): 1,
        ("Gold", "Silver"): 1,
    }
    assert tm.segments == ["Gold", "Silver", "Bronze"]  # by segment_rank, best first
    s = tm.summary()
    assert (s["stay"], s["up"], s["down"], s["new"], s["gone"]) == (1, 1, 1, 1, 3)
    # skipping a period: c5 comes back at DATES[2], c6 re-appears as Silver
    tm02 = transition_matrix(a, scheme="tier", from_date=DATES[0], to_date=DATES[2])
    assert _as_dict(tm02) == {
        ("Gold", "Gold"): 1,
        ("Bronze", "Gold"): 1,
        ("Silver", GONE): 1,
        (NEW, "Bronze"): 1,
        ("Silver", "Silver"): 1,
        ("Gold", "Silver"): 1,
        ("Gold", "Bronze"): 1,
    }
    store.close()


def test_counts_match_independent_computation_for_every_pair(random_store):
    store, a, _ = random_store
    for d1, d2 in itertools.combinations(DATES, 2):
        tm = transition_matrix(
            store.table("segment_assignments"), scheme="tier", from_date=d1, to_date=d2
        )
        assert _as_dict(tm) == count_by_hand(a, d1, d2), (d1, d2)


def test_rows_sum_to_one_and_intervals_bracket_shares(random_store):
    store, _, _ = random_store
    tm = transition_matrix(
        store.table("segment_assignments"), scheme="tier", from_date=DATES[1], to_date=DATES[3]
    )
    sums = tm.shares().sum(axis=1)
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=0, atol=1e-12)
    probs = tm.probabilities()
    np.testing.assert_allclose(probs.sum(axis=1).to_numpy(), 1.0)
    counts = tm.counts()
    assert probs.loc["Gold", "Silver"] == pytest.approx(
        counts.loc["Gold", "Silver"] / counts.loc["Gold"].sum()
    )
    c = tm.to_pandas()
    assert ((c["share_lower"] <= c["share"]) & (c["share"] <= c["share_upper"])).all()
    counts = tm.counts().loc[["Gold"], ["Gold", "Silver", "Bronze", GONE]].to_numpy()
    lo, hi = row_intervals(counts)
    got = (
        c[c["from_segment"] == "Gold"]
        .set_index("to_segment")
        .loc[["Gold", "Silver", "Bronze", GONE]]
    )
    np.testing.assert_allclose(got["share_lower"], lo[0])
    np.testing.assert_allclose(got["share_upper"], hi[0])


def test_revenue_of_movers_matches_pandas(random_store):
    store, a, t = random_store
    d1, d2 = DATES[1], DATES[2]
    tm = transition_matrix(
        store.table("segment_assignments"),
        scheme="tier",
        from_date=d1,
        to_date=d2,
        transactions=store.table("transactions"),
    )
    # independent: per customer, net amount with d1 <= ts < d2, merged onto the hand states
    window = t[(t["ts"] >= pd.Timestamp(d1)) & (t["ts"] < pd.Timestamp(d2))]
    rev = window.groupby("customer_id")["amount"].sum()
    at1 = a[a["snapshot_date"] == d1].set_index("customer_id")["segment"]
    at2 = a[a["snapshot_date"] == d2].set_index("customer_id")["segment"]
    both = pd.concat([at1.rename("f"), at2.rename("t")], axis=1).fillna({"f": NEW, "t": GONE})
    both["rev"] = rev.reindex(both.index).fillna(0.0)
    expected = both.groupby(["f", "t"])["rev"].sum()
    got = tm.to_pandas().set_index(["from_segment", "to_segment"])["revenue"]
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6)
    s = tm.summary()
    moved = both["f"] != both["t"]
    assert s["revenue_in_motion"] == pytest.approx(both.loc[moved, "rev"].sum())
    assert s["revenue_total"] == pytest.approx(both["rev"].sum())


def test_net_migration_and_decomposition(random_store):
    store, a, _ = random_store
    d1, d2 = DATES[0], DATES[4]
    tm = transition_matrix(
        store.table("segment_assignments"), scheme="tier", from_date=d1, to_date=d2
    )
    net = tm.net_migration().set_index("segment")
    sizes1 = a[a["snapshot_date"] == d1]["segment"].value_counts()
    sizes2 = a[a["snapshot_date"] == d2]["segment"].value_counts()
    for seg in ["Gold", "Silver", "Bronze"]:
        assert net.loc[seg, "size_from"] == sizes1[seg]
        assert net.loc[seg, "size_to"] == sizes2[seg]
        assert net.loc[seg, "net"] == sizes2[seg] - sizes1[seg]
    dec = tm.decomposition().set_index("direction")["customers"]
    hand = count_by_hand(a, d1, d2)
    rank = {"Gold": 1, "Silver": 2, "Bronze": 3}
    ups = sum(n for (f, t), n in hand.items() if f in rank and t in rank and rank[t] < rank[f])
    downs = sum(n for (f, t), n in hand.items() if f in rank and t in rank and rank[t] > rank[f])
    assert dec["up"] == ups and dec["down"] == downs


def test_pooled_equals_sum_of_pairs_and_weights(random_store):
    store, a, _ = random_store
    pooled = pooled_transition_matrix(store.table("segment_assignments"), scheme="tier")
    assert pooled.pairs == 4
    expected: dict[tuple[str, str], int] = {}
    for d1, d2 in itertools.pairwise(DATES):
        for key, n in count_by_hand(a, d1, d2).items():
            expected[key] = expected.get(key, 0) + n
    assert _as_dict(pooled) == expected
    # half-life 1 period: pair k of 4 weighted 0.5 ** (3 - k)
    weighted = pooled_transition_matrix(
        store.table("segment_assignments"), scheme="tier", weights=1.0
    )
    w = {d1: 0.5 ** (3 - k) for k, d1 in enumerate(DATES[:-1])}
    want = sum(
        w[d1] * count_by_hand(a, d1, d2).get(("Gold", "Silver"), 0)
        for d1, d2 in itertools.pairwise(DATES)
    )
    got = (
        weighted.to_pandas()
        .set_index(["from_segment", "to_segment"])
        .loc[("Gold", "Silver"), "customers"]
    )
    assert got == pytest.approx(want)
    ranged = pooled_transition_matrix(
        store.table("segment_assignments"), scheme="tier", start=DATES[1], end=DATES[3]
    )
    assert ranged.pairs == 2


def _other_segment(rows: pd.DataFrame, a: pd.DataFrame) -> pd.DataFrame:
    """``rows`` in another segment of their scheme: a second assignment of the same customer
    at the same snapshot (a repeated identical row is one assignment and is stored once)."""
    names = sorted(a.loc[a["scheme"] == rows["scheme"].iloc[0], "segment"].unique())
    other = next(n for n in names if n != rows["segment"].iloc[0])
    return rows.assign(segment=other)


def test_bad_inputs_are_clear_errors(random_store):
    store, a, _ = random_store
    table = store.table("segment_assignments")
    with pytest.raises(SegflowError, match="no assignments at snapshot date"):
        transition_matrix(table, scheme="tier", from_date=DATES[0], to_date=dt.date(2030, 1, 1))
    with pytest.raises(SegflowError, match="must be before"):
        transition_matrix(table, scheme="tier", from_date=DATES[2], to_date=DATES[1])
    with pytest.raises(SegflowError, match="not a date"):
        transition_matrix(table, scheme="tier", from_date="last month", to_date=DATES[1])
    dup = pd.concat([a, _other_segment(a.iloc[:1], a)])  # one customer in two segments
    store2 = make_store(dup)
    with pytest.raises(InputError, match="more than one segment"):
        transition_matrix(
            store2.table("segment_assignments"), scheme="tier", from_date=DATES[0], to_date=DATES[1]
        )
    with pytest.raises(InputError, match="lacks column"):
        transition_matrix(
            table.drop("segment_rank"), scheme="tier", from_date=DATES[0], to_date=DATES[1]
        )
    store2.close()


def test_figures_show_the_numbers(random_store):
    store, _, _ = random_store
    tm = transition_matrix(
        store.table("segment_assignments"), scheme="tier", from_date=DATES[0], to_date=DATES[1]
    )
    heat = tm.figure().data[0]
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), tm.shares().to_numpy(dtype=float))
    gold_gold = tm.counts().loc["Gold", "Gold"]
    assert f"n={gold_gold}" in heat.text[1][0]
    link = tm.sankey().data[0].link
    assert sum(link.value) == tm.to_pandas()["customers"].sum()
    payload = tm.to_dict()
    assert payload["count"] == len(tm.to_pandas()) and payload["summary"]["customers_from"] > 0
    assert "TransitionMatrix(scheme='tier'" in repr(tm)


@pytest.mark.parametrize(
    "p", [[0.55, 0.2, 0.15, 0.07, 0.03], [0.3, 0.3, 0.2, 0.1, 0.1], [0.8, 0.1, 0.05, 0.03, 0.02]]
)
def test_interval_coverage_by_simulation(p):
    """Jeffreys pointwise intervals cover each cell ~95%; Goodman covers whole rows >= 95%."""
    rng = np.random.default_rng(20240101)
    p = np.asarray(p)
    sims = rng.multinomial(150, p, size=2000)
    lo, hi = row_intervals(sims, method="dirichlet", level=0.95)
    cover = ((lo <= p) & (p <= hi)).mean(axis=0)
    # 2000 simulations: Monte Carlo SE of one cell's coverage is about 0.005
    assert abs(cover.mean() - 0.95) < 0.015, cover
    assert cover.min() > 0.90, cover
    lo, hi = row_intervals(sims, method="goodman", level=0.95)
    simultaneous = ((lo <= p) & (p <= hi)).all(axis=1).mean()
    assert simultaneous > 0.93, simultaneous


def test_value_per_cell_and_order(random_store):
    store, a, _ = random_store
    rng = np.random.default_rng(4)
    ids = sorted(a["customer_id"].unique())
    values = pd.DataFrame({"customer_id": ids, "value": rng.gamma(2.0, 50.0, len(ids))})
    value_table = store.con.create_table("clv_values", values, overwrite=True)
    order = ["Bronze", "Silver", "Gold"]
    tm = transition_matrix(
        store.table("segment_assignments"),
        scheme="tier",
        from_date=DATES[2],
        to_date=DATES[3],
        value=value_table,
        order=order,
    )
    assert tm.segments == order and list(tm.counts().columns) == [*order, GONE]
    at1 = a[a["snapshot_date"] == DATES[2]].set_index("customer_id")["segment"]
    at2 = a[a["snapshot_date"] == DATES[3]].set_index("customer_id")["segment"]
    both = pd.concat([at1.rename("f"), at2.rename("t")], axis=1).fillna({"f": NEW, "t": GONE})
    both["v"] = values.set_index("customer_id")["value"].reindex(both.index)
    expected = both.groupby(["f", "t"])["v"].sum()
    got = tm.to_pandas().set_index(["from_segment", "to_segment"])["value"]
    for key, v in expected.items():
        assert got[key] == pytest.approx(v)


def test_views_carry_the_numbers(random_store):
    from segflow.viz._migration import forecast_chart

    store, _, _ = random_store
    pooled = pooled_transition_matrix(store.table("segment_assignments"), scheme="tier")
    alluvial = pooled.alluvial().data[0]
    assert sum(alluvial.link.value) == pooled.pair_cells["customers"].sum()
    # one node per (date, state) that has customers (plotly draws no empty nodes)
    pc = pooled.pair_cells[pooled.pair_cells["customers"] > 0]
    linked = set(zip(pc["from_date"], pc["from_segment"], strict=True)) | set(
        zip(pc["to_date"], pc["to_segment"], strict=True)
    )
    assert len(alluvial.node.label) == len(linked)
    net = pooled.net_migration()
    bars = pooled.net_flow_figure().data
    # horizontal bars: the numbers are on x, the segments on y
    assert list(bars[0].y) == list(net["segment"])
    np.testing.assert_allclose(
        np.asarray(bars[0].x, dtype=float), net["inflow"].to_numpy(dtype=float)
    )
    np.testing.assert_allclose(
        np.asarray(bars[1].x, dtype=float), -net["outflow"].to_numpy(dtype=float)
    )
    fc = pd.DataFrame({"Gold": [10.0, 12.0], "Silver": [5.0, 4.0]})
    fig = forecast_chart(fc, actual=fc + 1)
    assert [tr.name for tr in fig.data] == [
        "Gold (forecast)",
        "Gold (actual)",
        "Silver (forecast)",
        "Silver (actual)",
    ]
    assert list(fig.data[1].y) == [11.0, 13.0]


def test_validate_false_skips_the_duplicate_check(random_store):
    _, a, _ = random_store
    dup = pd.concat([a, _other_segment(a[a["snapshot_date"] == DATES[0]].iloc[:1], a)])
    store = make_store(dup)
    table = store.table("segment_assignments")
    with pytest.raises(InputError, match="more than one segment"):
        pooled_transition_matrix(table, scheme="tier")
    # unchecked, the duplicate is counted twice: the price of validate=False
    tm = transition_matrix(
        table, scheme="tier", from_date=DATES[0], to_date=DATES[1], validate=False
    )
    assert tm.summary()["customers_from"] == (a["snapshot_date"] == DATES[0]).sum() + 1
    store.close()
