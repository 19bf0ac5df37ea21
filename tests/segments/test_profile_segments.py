"""Segment profiles against an independent pandas computation; names; figures."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from segflow.segments._naming import suggest_name
from segflow.segments._profile import profile_segments


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    n = 900
    seg = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    feats = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "frequency": rng.poisson(np.where(seg == "B", 9, 2)),  # integers
            "monetary": rng.gamma(2.0, np.where(seg == "C", 400.0, 50.0)),
            "recency": rng.exponential(np.where(seg == "A", 300.0, 30.0)),
            "region": np.where(
                seg == "C", rng.choice(["urban", "rural"], n, p=[0.9, 0.1]),
                rng.choice(["urban", "rural", None], n, p=[0.3, 0.6, 0.1]),
            ),
        }
    )
    feats.loc[[3, 5, 8], "recency"] = np.nan
    assign = pd.DataFrame({"customer_id": feats["customer_id"], "segment": seg})
    # a customer with no features and one feature row without a segment are left out
    assign = pd.concat([assign.iloc[1:], pd.DataFrame({"customer_id": ["ghost"], "segment": ["A"]})])
    return feats, assign


@pytest.fixture(scope="module")
def profile(data):
    feats, assign = data
    con = ibis.duckdb.connect()
    return profile_segments(con.create_table("f", feats), con.create_table("a", assign))


def test_profile_numbers_match_pandas(data, profile):
    feats, assign = data
    df = feats.merge(assign, on="customer_id")  # inner join, like the engine
    g = df.groupby("segment")
    table = profile.table.set_index("segment")
    assert table["size"].to_dict() == g.size().to_dict()
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.loc["B", "share"] == pytest.approx(g.size()["B"] / len(df))
    # money is summed exactly to a millionth of the currency unit (each value rounded first)
    cents = df.assign(m6=df["monetary"].round(6)).groupby("segment")["m6"].sum()
    rev = cents / cents.sum()
    assert table["revenue_share"].to_dict() == pytest.approx(rev.to_dict(), rel=1e-12)
    assert table["value"].to_list() == [round(cents[s], 6) for s in table.index]
    for f in ["frequency", "monetary", "recency"]:
        # means kept to 12 significant digits (the same on any engine and thread count)
        assert profile.means[f].to_dict() == pytest.approx(g[f].mean().to_dict(), rel=6e-12)
        assert profile.medians[f].to_dict() == pytest.approx(g[f].median().to_dict(), rel=1e-12)
        sd = df[f].std(ddof=0)
        expected = (g[f].mean() - df[f].mean()) / sd
        assert profile.std_diff[f].to_dict() == pytest.approx(expected.to_dict(), rel=1e-9)
    # segments listed by size (no segment_rank given)
    assert list(profile.table["segment"]) == list(g.size().sort_values(ascending=False).index)


@pytest.mark.parametrize("budget", [1, 1_800])
def test_medians_in_batches_equal_one_query(data, profile, monkeypatch, budget):
    """Beyond ``MEDIAN_VALUES`` values (as for a cluster scheme at 10M customers, where one
    query of every median outgrows memory) the medians are taken a few features a query:
    ``budget`` 1 gives one feature a query, 1,800 two of the three (900 feature rows): the
    profile is the same to the last bit, and its medians still pandas'."""
    from segflow.segments import _profile

    feats, assign = data
    con = ibis.duckdb.connect()
    monkeypatch.setattr(_profile, "MEDIAN_VALUES", budget)
    batched = profile_segments(con.create_table("f", feats), con.create_table("a", assign))
    pd.testing.assert_frame_equal(batched.to_pandas(), profile.to_pandas(), check_exact=True)
    pd.testing.assert_frame_equal(batched.base, profile.base, check_exact=True)
    df = feats.merge(assign, on="customer_id")
    for f in ["frequency", "monetary", "recency"]:
        assert batched.medians[f].to_dict() == pytest.approx(
            df.groupby("segment")[f].median().to_dict(), rel=1e-12)
        # the base's mean and std are kept to 12 significant digits (_profile.settled), its
        # median exact (an order statistic, as the stored profiles' base_median)
        assert batched.base.loc["median", f] == pytest.approx(df[f].median(), rel=1e-15)


def test_median_budget_follows_the_memory_limit(data, profile, monkeypatch):
    """The values one median query may hold: the DuckDB memory limit over
    MEDIAN_BYTES_PER_VALUE, capped at MEDIAN_VALUES; a limit that small batches the medians
    (one feature a query here) and the profile is the same to the last bit."""
    from segflow.segments import _profile
    from segflow.store._memory import memory_limit_bytes

    feats, assign = data
    con = ibis.duckdb.connect()
    f, a = con.create_table("f", feats), con.create_table("a", assign)
    con.raw_sql("SET memory_limit = '64GB'")
    assert _profile.median_budget(f) == _profile.MEDIAN_VALUES == 250_000_000
    con.raw_sql("SET memory_limit = '1GB'")
    limit = memory_limit_bytes(con.con)
    assert 0.99e9 < limit <= 1e9
    assert _profile.median_budget(f) == limit // _profile.MEDIAN_BYTES_PER_VALUE
    # 900 rows x 3 features: a budget under 1,800 values is one feature a query (the
    # budget per value raised: DuckDB does not run on a few kilobytes)
    monkeypatch.setattr(_profile, "MEDIAN_BYTES_PER_VALUE", limit // 899)
    assert 899 <= _profile.median_budget(f) < 900
    batched = profile_segments(f, a)
    pd.testing.assert_frame_equal(batched.to_pandas(), profile.to_pandas(), check_exact=True)
    pd.testing.assert_frame_equal(batched.base, profile.base, check_exact=True)


def test_makeup_matches_pandas(data, profile):
    feats, assign = data
    df = feats.merge(assign, on="customer_id")
    region = df["region"].fillna("(missing)")
    expected = pd.crosstab(df["segment"], region, normalize="index")
    base = region.value_counts(normalize=True)
    got = profile.makeup.set_index(["segment", "level"])
    for seg in expected.index:
        for level in expected.columns:
            if expected.loc[seg, level] > 0:
                assert got.loc[(seg, level), "share"] == pytest.approx(expected.loc[seg, level])
                assert got.loc[(seg, level), "base_share"] == pytest.approx(base[level])


def test_names_and_overrides(data, profile):
    names = dict(zip(profile.table["segment"], profile.table["suggested_name"], strict=True))
    # d(A) = frequency -0.54, recency +0.48 (below the 0.5 threshold); d(B) = frequency +1.35,
    # recency -0.53; d(C) = monetary +1.54, frequency -0.61, and C is 86 % urban (base 42 %)
    assert names == {
        "A": "infrequent customers",
        "B": "frequent recent customers",
        "C": "infrequent high spenders, urban",
    }
    feats, assign = data
    con = ibis.duckdb.connect()
    again = profile_segments(
        con.create_table("f", feats), con.create_table("a", assign), names={"B": "loyalists"}
    )
    renamed = dict(zip(again.table["segment"], again.table["name"], strict=True))
    assert renamed["B"] == "loyalists" and renamed["C"] == names["C"]


def test_suggest_name_rules():
    d = pd.Series({"frequency": 1.2, "monetary": 0.9, "tenure": 0.1})
    assert suggest_name(d) == "frequent high spenders"
    assert suggest_name(pd.Series({"recency": -0.8, "x": 0.2})) == "recent customers"
    assert suggest_name(pd.Series({"score": 0.3})) == "typical customers"
    makeup = pd.DataFrame(
        {"column": ["city"] * 2, "level": ["Paris", "Lyon"], "share": [0.7, 0.3], "base_share": [0.3, 0.7]}
    )
    assert suggest_name(pd.Series({"score": 0.7}), makeup) == "high score customers, Paris"


def test_result_contract_and_figures(profile):
    frame = profile.to_pandas()
    assert {"segment", "size", "share", "revenue_share", "mean__monetary", "median__recency"} <= set(frame.columns)
    payload = profile.to_dict()
    assert payload["count"] == 3 and "std_diff" in payload and payload["makeup"]
    assert profile.to_json().startswith("{")
    assert "3 segments" in repr(profile)
    heat = profile.figure("heatmap")
    assert heat.data[0].z.shape == (3, 3)
    snake = profile.figure("snake")
    assert len(snake.data) == 3
    bars = profile.figure("size")
    assert list(bars.data[0].x) == pytest.approx(list(profile.table["share"]))  # horizontal bars


def test_unordered_scheme_null_ranks_are_listed_by_size(data, profile):
    """An unordered scheme (rules without ``ordered``, browse_no_buy) assigns a null
    ``segment_rank``: its profile lists the segments by size, as one without the column (it
    was a TypeError traceback from ``segflow segment profile``)."""
    feats, assign = data
    con = ibis.duckdb.connect()
    ranks = con.create_table("r", assign.assign(segment_rank=pd.array([None] * len(assign), "Int64")))
    unranked = profile_segments(con.create_table("f", feats), ranks)
    expected = assign.merge(feats, on="customer_id")["segment"].value_counts()
    assert unranked.table["segment"].to_list() == list(expected.index)  # A, B, C by size
    assert unranked.table["segment_rank"].to_list() == [1, 2, 3]
    pd.testing.assert_frame_equal(unranked.table, profile.table)
