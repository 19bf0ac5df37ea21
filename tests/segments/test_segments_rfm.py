"""RFM scores and named segments against an independent pandas implementation."""

from __future__ import annotations

import itertools

import ibis
import numpy as np
import pandas as pd
import pytest

from segflow.config import SchemeSettings
from segflow.errors import SegflowError
from segflow.segments import NO_PURCHASE, RFM_SEGMENT_ORDER, RFM_SEGMENTS, assign, rfm_scores


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


@pytest.mark.parametrize("bins", [5, 3, 4])
def test_scores_match_pandas_ntile(bins):
    df = _features()
    got = rfm_scores(ibis.memtable(df), bins=bins).to_pandas().set_index("customer_id")
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


def test_tie_rule_is_customer_id_order():
    df = pd.DataFrame({"customer_id": ["b", "a", "d", "c", "e"], "recency_days": [7] * 5,
                       "frequency": [1] * 5, "monetary": [10.0] * 5})
    got = rfm_scores(ibis.memtable(df)).to_pandas().set_index("customer_id").sort_index()
    # equal recency: ordered by id ascending, descending recency => a gets the lowest score
    assert got.r_score.tolist() == [1, 2, 3, 4, 5]
    assert got.f_score.tolist() == [1, 2, 3, 4, 5]


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


def test_named_segments_match_the_grid():
    df = _features(500, seed=11)
    got = assign(SchemeSettings(name="rfm", kind="rfm"), ibis.memtable(df)).to_pandas()
    ref = _reference(df, 5).set_index("customer_id")
    got = got.set_index("customer_id").join(ref)
    for cid, row in got.iterrows():
        if pd.isna(row.recency_days):
            assert row.segment == NO_PURCHASE and row.segment_rank == len(RFM_SEGMENT_ORDER), cid
        else:
            want = GRID[int(row.r_score)][int(row.fm_score) - 1]
            assert row.segment == want, (cid, row.r_score, row.fm_score)
            assert row.segment_rank == RFM_SEGMENT_ORDER.index(want) + 1
    assert set(got.segment) - {NO_PURCHASE} <= {s.name for s in RFM_SEGMENTS}


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
