"""RFM scores and named segments against an independent pandas implementation."""

from __future__ import annotations

import itertools

import ibis
import numpy as np
import pandas as pd
import pytest

from segflow.config import SchemeSettings
from segflow.errors import SegflowError
from segflow.segments import (
    NO_PURCHASE,
    RFM_SEGMENT_ORDER,
    RFM_SEGMENTS,
    assign,
    rfm_cut_points,
    rfm_scores,
    tier_names,
)


def _features(n: int = 203, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.integers(1, 40, n).astype(float)  # many ties
    recency[rng.random(n) < 0.1] = np.nan  # never purchased
    freq = np.where(np.isnan(recency), 0, rng.geometric(0.5, n))
    monetary = np.where(np.isnan(recency), 0.0, np.round(rng.gamma(2, 30, n), 0))
    ids = [f"id{i:04d}" for i in rng.permutation(n)]
    return pd.DataFrame({"customer_id": ids, "recency_days": recency, "frequency": freq,
                         "monetary": monetary})


def _ntile(values: pd.Series, ids: pd.Series, bins: int, descending: bool) -> pd.Series:
    """SQL NTILE by hand: sort by (value, id); the first N mod bins groups get one extra row."""
    frame = pd.DataFrame({"v": -values if descending else values, "id": ids})
    order = frame.sort_values(["v", "id"]).index
    n = len(order)
    q, r = divmod(n, bins)
    sizes = [q + 1 if k < r else q for k in range(bins)]
    labels = np.repeat(np.arange(1, bins + 1), sizes)
    return pd.Series(labels, index=order).reindex(frame.index)


def _reference(df: pd.DataFrame, bins: int) -> pd.DataFrame:
    buyers = df[df.recency_days.notna()]
    out = df.copy()
    out["r_score"] = _ntile(buyers.recency_days, buyers.customer_id, bins, True)
    out["f_score"] = _ntile(buyers.frequency, buyers.customer_id, bins, False)
    out["m_score"] = _ntile(buyers.monetary, buyers.customer_id, bins, False)
    out["fm_score"] = (out.f_score + out.m_score) // 2
    return out


def _quantile(values: pd.Series, bins: int, lower_is_better: bool) -> pd.Series:
    """The documented default: 1 + floor(bins * (customers strictly worse) / n)."""
    worse = values.rank(method="min", ascending=not lower_is_better) - 1
    return (1 + (bins * worse) // len(values)).astype(int)


def _quantile_reference(df: pd.DataFrame, bins: int) -> pd.DataFrame:
    buyers = df[df.recency_days.notna()]
    out = df.copy()
    out["r_score"] = _quantile(buyers.recency_days, bins, True)
    out["f_score"] = _quantile(buyers.frequency, bins, False)
    out["m_score"] = _quantile(buyers.monetary.round(2), bins, False)
    out["fm_score"] = (out.f_score + out.m_score) // 2
    return out


@pytest.mark.parametrize("bins", [5, 3, 4, 7])
def test_quantile_scores_match_pandas(bins):
    df = _features()
    got = rfm_scores(ibis.memtable(df), bins=bins).to_pandas().set_index("customer_id")
    want = _quantile_reference(df, bins).set_index("customer_id").loc[got.index]
    for col in ("r_score", "f_score", "m_score", "fm_score"):
        np.testing.assert_array_equal(got[col].astype(float), want[col].astype(float), col)
    buyers = got[got.recency_days.notna()]
    for col, feature in (("r_score", "recency_days"), ("f_score", "frequency"),
                         ("m_score", "monetary")):
        # equal values, equal scores; better values never score lower
        assert (buyers.groupby(feature)[col].nunique() == 1).all()
        ordered = buyers.sort_values(feature, ascending=feature != "recency_days")[col]
        assert ordered.is_monotonic_increasing
    assert set(buyers.r_score) <= set(range(1, bins + 1))


def test_heavy_ties_take_the_lowest_score_and_no_ties_equal_ntile():
    # 55 of 100 buyers ordered once: all of them f_score 1; two orders start at 1 + 5*55//100 = 3
    df = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(100)],
                       "recency_days": np.arange(100, dtype=float),
                       "frequency": [1] * 55 + [2] * 20 + [3] * 10 + [5] * 15,
                       "monetary": np.arange(100, dtype=float) + 0.5})
    got = rfm_scores(ibis.memtable(df)).to_pandas().set_index("customer_id").sort_index()
    assert got.f_score.value_counts().to_dict() == {1: 55, 3: 20, 4: 10, 5: 15}
    # no ties in recency and monetary: exactly the ntile scores
    ntile = rfm_scores(ibis.memtable(df), method="ntile").to_pandas().set_index("customer_id")
    ntile = ntile.sort_index()
    assert (got.r_score == ntile.r_score).all() and (got.m_score == ntile.m_score).all()
    assert got.r_score.value_counts().tolist() == [20] * 5


@pytest.mark.parametrize("bins", [5, 3, 4])
def test_ntile_option_matches_pandas_ntile(bins):
    df = _features()
    got = rfm_scores(ibis.memtable(df), bins=bins, method="ntile").to_pandas()
    got = got.set_index("customer_id")
    want = _reference(df, bins).set_index("customer_id").loc[got.index]
    for col in ("r_score", "f_score", "m_score", "fm_score"):
        np.testing.assert_array_equal(got[col].astype(float), want[col].astype(float), col)
    buyers = got[got.recency_days.notna()]
    counts = buyers.r_score.value_counts().sort_index()
    assert counts.max() - counts.min() <= 1  # equal-sized bins, ties split by customer_id
    assert got.loc[got.recency_days.isna(), "r_score"].isna().all()


def test_five_is_best():
    df = pd.DataFrame({"customer_id": list("abcde"), "recency_days": [1, 2, 3, 4, 5],
                       "frequency": [5, 4, 3, 2, 1], "monetary": [50.0, 40, 30, 20, 10]})
    got = rfm_scores(ibis.memtable(df)).to_pandas().set_index("customer_id")
    assert got.loc["a", ["r_score", "f_score", "m_score"]].tolist() == [5, 5, 5]
    assert got.loc["e", ["r_score", "f_score", "m_score"]].tolist() == [1, 1, 1]


def test_ntile_tie_rule_is_customer_id_order_and_default_keeps_ties():
    df = pd.DataFrame({"customer_id": ["b", "a", "d", "c", "e"], "recency_days": [7] * 5,
                       "frequency": [1] * 5, "monetary": [10.0] * 5})
    got = rfm_scores(ibis.memtable(df), method="ntile").to_pandas().set_index("customer_id")
    got = got.sort_index()
    # equal recency: ordered by id ascending, descending recency => a gets the lowest score
    assert got.r_score.tolist() == [1, 2, 3, 4, 5]
    assert got.f_score.tolist() == [1, 2, 3, 4, 5]
    same = rfm_scores(ibis.memtable(df)).to_pandas()
    assert same.r_score.tolist() == [1] * 5 and same.m_score.tolist() == [1] * 5


def test_grid_covers_every_cell_once():
    for r, fm in itertools.product(range(1, 6), range(1, 6)):
        owners = [s.name for s in RFM_SEGMENTS if s.r[0] <= r <= s.r[1] and s.fm[0] <= fm <= s.fm[1]]
        assert len(owners) == 1, (r, fm, owners)
    assert len(RFM_SEGMENTS) == 11


# An independent statement of the grid, R rows 5..1, FM columns 1..5 (docs/segments.md).
GRID = {
    5: ["New", "Potential loyalists", "Potential loyalists", "Champions", "Champions"],
    4: ["Promising", "Potential loyalists", "Potential loyalists", "Champions", "Champions"],
    3: ["About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"],
    2: ["Lost", "Hibernating", "At risk", "At risk", "Can't lose them"],
    1: ["Lost", "Hibernating", "At risk", "At risk", "Can't lose them"],
}


@pytest.mark.parametrize(("bins", "method"), [(5, "quantile"), (5, "ntile"), (3, "quantile"),
                                              (10, "quantile")])
def test_named_segments_match_the_grid(bins, method):
    df = _features(500, seed=11)
    scheme = SchemeSettings(name="rfm", kind="rfm", bins=bins, score_method=method)
    got = assign(scheme, ibis.memtable(df)).to_pandas()
    ref = (_quantile_reference if method == "quantile" else _reference)(df, bins)
    # documented placement on the 5-point grid: bins = 3 -> 1, 3, 5; bins = 10 -> pairs
    to_grid = {5: [1, 2, 3, 4, 5], 3: [1, 3, 5], 10: [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]}[bins]
    for col in ("r_score", "f_score", "m_score"):
        ref[col] = ref[col].map(lambda s: to_grid[int(s) - 1] if pd.notna(s) else s)
    ref["fm_score"] = (ref.f_score + ref.m_score) // 2
    ref = ref.set_index("customer_id")
    got = got.set_index("customer_id").join(ref)
    for cid, row in got.iterrows():
        if pd.isna(row.recency_days):
            assert row.segment == NO_PURCHASE and row.segment_rank == len(RFM_SEGMENT_ORDER), cid
        else:
            want = GRID[int(row.r_score)][int(row.fm_score) - 1]
            assert row.segment == want, (cid, row.r_score, row.fm_score)
            assert row.segment_rank == RFM_SEGMENT_ORDER.index(want) + 1
    assert set(got.segment) - {NO_PURCHASE} <= {s.name for s in RFM_SEGMENTS}
    if bins == 3:  # the top third on R and FM are Champions; the bottom third Lost
        assert "Champions" in set(got.segment) and "Lost" in set(got.segment)


def test_bad_bins_and_missing_feature():
    df = ibis.memtable(_features(10))
    with pytest.raises(SegflowError, match="bins"):
        rfm_scores(df, bins=1)
    with pytest.raises(SegflowError, match="monetary"):
        rfm_scores(df.drop("monetary"))


def test_rules_over_rfm_scores_reproduce_the_grid():
    df = _features(300, seed=5)
    table = ibis.memtable(df)
    champions = SchemeSettings(name="c", kind="rules", default="other", rules=[
        {"segment": "champ", "when": "r_score >= 4 and fm_score >= 4"}])
    got = assign(champions, table).to_pandas().set_index("customer_id").segment
    named = assign(SchemeSettings(name="rfm", kind="rfm"), table).to_pandas()
    named = named.set_index("customer_id").segment
    assert ((got == "champ") == (named == "Champions")).all()
    assert (got == "champ").sum() > 10
    # rules use the scheme's bins: with 3 bins the top R score is 3
    three = SchemeSettings(name="c3", kind="rules", default="other", bins=3, rules=[
        {"segment": "champ", "when": "r_score = 3 and f_score = 3"}])
    got3 = assign(three, table).to_pandas().set_index("customer_id").segment
    ref = _quantile_reference(df, 3).set_index("customer_id").loc[got3.index]
    assert ((got3 == "champ") == ((ref.r_score == 3) & (ref.f_score == 3))).all()


def test_frozen_cut_points_reproduce_the_reference_and_hold_later():
    df = _features(400, seed=7)
    table = ibis.memtable(df)
    cuts = rfm_cut_points(table, bins=5)
    assert [len(v) for v in cuts.values()] == [4, 4, 4]
    per_snapshot = rfm_scores(table).to_pandas().set_index("customer_id").sort_index()
    frozen = rfm_scores(table, cut_points=cuts).to_pandas().set_index("customer_id").sort_index()
    for col in ("r_score", "f_score", "m_score"):
        np.testing.assert_array_equal(frozen[col].astype(float), per_snapshot[col].astype(float))
    # 400 new customers who buy more and more recently: relative scores of the old customers
    # fall although they did nothing; frozen ones do not move
    new = df.assign(customer_id=[f"new{i}" for i in range(len(df))],
                    recency_days=0.0, frequency=50, monetary=10_000.0)
    both = ibis.memtable(pd.concat([df, new]))
    rel = rfm_scores(both).to_pandas().set_index("customer_id").loc[per_snapshot.index]
    fro = rfm_scores(both, cut_points=cuts).to_pandas().set_index("customer_id")
    fro = fro.loc[per_snapshot.index]
    buyers = per_snapshot.recency_days.notna()
    assert (rel.r_score[buyers] < per_snapshot.r_score[buyers]).mean() > 0.5
    np.testing.assert_array_equal(fro.r_score.astype(float), per_snapshot.r_score.astype(float))
    scheme = SchemeSettings(name="f", kind="rfm", cutoffs="fixed", cut_points=cuts)
    fixed = assign(scheme, both).to_pandas().set_index("customer_id")
    base = assign(SchemeSettings(name="r", kind="rfm"), table).to_pandas()
    assert (fixed.segment.loc[base.customer_id].to_numpy() == base.segment.to_numpy()).all()
    with pytest.raises(SegflowError, match="needs 4 values"):
        rfm_scores(table, cut_points={**cuts, "frequency": [1.0]})


def _grouped_features(seed: int) -> pd.DataFrame:
    """Several snapshots of random features: heavy ties, one snapshot with a single buyer,
    one where nobody bought, negative spend (returns), a value tied at the top."""
    rng = np.random.default_rng(seed)
    parts = []
    for snap, n in enumerate((250, 180, 1, 40, 0, 120)):
        recency = rng.integers(0, 30, n).astype(float)
        recency[rng.random(n) < 0.15] = np.nan
        if snap == 3:
            recency[:] = np.nan  # nobody bought
        freq = np.where(np.isnan(recency), 0, rng.geometric(0.45, n))
        monetary = np.where(np.isnan(recency), 0.0, np.round(rng.normal(80, 60, n), 1))
        monetary[: n // 10] = monetary.max(initial=0.0)  # a tie at the top
        parts.append(pd.DataFrame({"snap": snap, "customer_id": [f"s{snap}c{i:03d}" for i in range(n)],
                                   "recency_days": recency, "frequency": freq,
                                   "monetary": monetary, "monetary_12m": monetary / 2}))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize(("seed", "bins"), [(1, 5), (2, 3), (3, 10)])
def test_quantile_scores_within_groups_match_pandas(seed, bins):
    """Scores per snapshot (``group_by``): each snapshot's scores are those of pandas on
    that snapshot alone (the rule through each group's cut points)."""
    df = _grouped_features(seed)
    got = rfm_scores(ibis.memtable(df), bins=bins, group_by="snap").to_pandas()
    got = got.set_index("customer_id")
    for _snap, part in df.groupby("snap"):
        want = _quantile_reference(part.reset_index(drop=True), bins).set_index("customer_id")
        mine = got.loc[want.index]
        for col in ("r_score", "f_score", "m_score", "fm_score"):
            np.testing.assert_array_equal(mine[col].astype(float), want[col].astype(float), col)
    assert len(got) == len(df) and got.loc[df.customer_id[df.snap == 3], "r_score"].isna().all()


@pytest.mark.parametrize("seed", [4, 5])
def test_value_tiers_within_groups_match_pandas(seed):
    from segflow.segments._buckets import value_tier_expr

    df = _grouped_features(seed)
    tiers = (1, 5, 10, 25, 50)
    names = tier_names(tiers)
    got = value_tier_expr(ibis.memtable(df), tiers=tiers, group_by="snap").to_pandas()
    got = got.set_index("customer_id").segment
    for _snap, part in df.groupby("snap"):
        v = part.set_index("customer_id").monetary_12m.round(2)
        spend = v[v > 0]
        at_or_above = spend.rank(method="max", ascending=False)  # spenders with v or more
        for cid, value in v.items():
            if not value > 0:
                assert got[cid] == "no spend"
                continue
            i, n = at_or_above[cid], len(spend)
            assert got[cid] == next((names[k] for k, q in enumerate(tiers) if 100 * i <= q * n),
                                    names[-2]), cid


def test_helper_columns_never_shadow_the_callers():
    """Columns of the caller named like the scores' helper columns (``_cut0``, ``_tier0``,
    ``_value0``, ``_key0``, a ``..._right``) change nothing and are kept as they are."""
    from segflow.segments._buckets import value_tier_expr
    from segflow.segments._scores import quantile_score

    df = _grouped_features(6)
    clash = df.assign(_cut0=0.0, _cut1=-1.0, _tier0=1e9, _value0=-5.0, _key0="k",
                      snap_right="r")
    for group_by in ("snap", None):
        plain = quantile_score(ibis.memtable(df), "frequency", "s", bins=4,
                               higher_is_better=True, group_by=group_by).to_pandas()
        shadowed = quantile_score(ibis.memtable(clash), "frequency", "s", bins=4,
                                  higher_is_better=True, group_by=group_by).to_pandas()
        key = ["customer_id"]
        merged = plain.merge(shadowed, on=key, suffixes=("", "_x"))
        assert len(merged) == len(df) and merged["s"].equals(merged["s_x"])
        assert (shadowed[["_cut0", "_cut1", "_key0", "snap_right"]]
                == [0.0, -1.0, "k", "r"]).all().all()
        tiers = value_tier_expr(ibis.memtable(df), group_by=group_by).to_pandas()
        tiers_x = value_tier_expr(ibis.memtable(clash), group_by=group_by).to_pandas()
        both = tiers.merge(tiers_x, on=key, suffixes=("", "_x"))
        assert both["segment"].equals(both["segment_x"])
        assert (tiers_x["_tier0"] == 1e9).all() and (tiers_x["_value0"] == -5.0).all()
