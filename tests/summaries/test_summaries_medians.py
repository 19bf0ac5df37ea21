"""The profiles' statistics from one fetch of the features (segflow.summaries._medians)
equal DuckDB's grouped ones (the engine's definitions: exact medians, means, population
standard deviations, sizes, value sums): odd and even groups, missing values, ties, a group
without values of a feature, customers in no segment of a scheme."""

from __future__ import annotations

import duckdb
import ibis
import numpy as np
import pandas as pd


def _data(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 997
    f = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                      "x": rng.lognormal(size=n), "y": rng.integers(0, 5, n).astype(float),
                      "z": rng.normal(size=n)})
    f.loc[rng.random(n) < 0.2, "z"] = np.nan  # missing values: skipped
    f.loc[f.index[:3], "y"] = np.nan
    rows = []
    for scheme, k in (("a", 4), ("b", 7)):
        seg = rng.integers(0, k, n)
        for i in range(n):
            if scheme == "b" and i % 10 == 0:
                continue  # not assigned in b
            rows.append((scheme, f"c{i}", f"{scheme}{seg[i]}", int(seg[i]) + (i % 2 if scheme == "a" else 0)))
    rows.append(("c", "c5", "only", 1))  # a one-customer segment
    rows.append(("d", "c6", "empty_z", 1))  # a segment whose one customer has no z
    a = pd.DataFrame(rows, columns=["scheme", "customer_id", "segment", "segment_rank"])
    f.loc[f.customer_id == "c6", "z"] = np.nan
    return f, a


def test_profile_statistics_equal_duckdb_s_grouped_ones():
    from segflow.summaries._medians import profile_stats

    f, a = _data()
    con = ibis.duckdb.connect()
    ft, at = con.create_table("f", f), con.create_table("a", a).cache()
    numeric = ["x", "y", "z"]
    per_seg, bases = profile_stats(ft, at, numeric, "x")

    raw = duckdb.connect()
    raw.register("f", f)
    raw.register("a", a)
    want = raw.execute(
        "SELECT scheme, segment, count(*) AS size, min(segment_rank) AS segment_rank, sum(x) AS value, "
        "avg(x) AS m0, avg(y) AS m1, avg(z) AS m2, median(x) AS q0, median(y) AS q1, median(z) AS q2 "
        "FROM a JOIN f USING (customer_id) GROUP BY ALL ORDER BY ALL").df()
    got = per_seg.sort_values(["scheme", "segment"], ignore_index=True)
    assert len(got) == len(want) == 4 + 7 + 2
    assert list(got.segment) == list(want.segment) and list(got["size"]) == list(want["size"])
    assert list(got.segment_rank) == list(want.segment_rank)
    np.testing.assert_allclose(got[["q0", "q1", "q2"]], want[["q0", "q1", "q2"]], rtol=1e-15, equal_nan=True)
    np.testing.assert_allclose(got[["value", "m0", "m1", "m2"]], want[["value", "m0", "m1", "m2"]], rtol=1e-12,
                               equal_nan=True)
    assert np.isnan(got.loc[got.segment == "empty_z", "q2"]).all()
    assert got.loc[got.segment == "only", "q0"].item() == f.x[5]
    # the bases: every profiled customer, and scheme b's (it leaves customers out); c and d too
    assert set(bases) == {None, "b", "c", "d"}
    for key, who in ((None, f), ("b", f[f.customer_id.isin(a[a.scheme == "b"].customer_id)])):
        b = bases[key]
        assert b["n"] == len(who)
        for j, col in enumerate(numeric):
            v = who[col].dropna()
            np.testing.assert_allclose([b[f"m{j}"], b[f"s{j}"], b[f"q{j}"]],
                                       [v.mean(), v.std(ddof=0), v.median()], rtol=1e-12)
