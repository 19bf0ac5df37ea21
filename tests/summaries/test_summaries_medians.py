"""The profiles' exact medians from one sort per feature (segflow.summaries._medians) equal
DuckDB's grouped median (the engine's definition) and pandas' median: odd and even groups,
missing values, ties, an empty group, customers in no segment of a scheme."""

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
            rows.append((scheme, f"c{i}", f"{scheme}{seg[i]}"))
    rows.append(("c", "c5", "only"))  # a one-customer segment
    rows.append(("d", "c6", "empty_z"))  # a segment whose one customer has no z
    a = pd.DataFrame(rows, columns=["scheme", "customer_id", "segment"])
    f.loc[f.customer_id == "c6", "z"] = np.nan
    return f, a


def test_medians_equal_duckdb_and_pandas():
    from segflow.summaries._medians import profile_medians

    f, a = _data()
    con = ibis.duckdb.connect()
    ft, at = con.create_table("f", f), con.create_table("a", a).cache()
    numeric = ["x", "y", "z"]
    by_seg, by_base = profile_medians(ft, at, numeric, ["b"])

    raw = duckdb.connect()
    raw.register("f", f)
    raw.register("a", a)
    want = raw.execute("SELECT scheme, segment, median(x), median(y), median(z) FROM a JOIN f USING (customer_id) "
                       "GROUP BY ALL ORDER BY ALL").fetchall()
    assert len(by_seg) == len(want) == 4 + 7 + 2
    for scheme, segment, *q in want:
        got = by_seg[(scheme, segment)]
        np.testing.assert_allclose(got, np.array(q, dtype=float), rtol=1e-15, equal_nan=True)
        member = f[f.customer_id.isin(a[(a.scheme == scheme) & (a.segment == segment)].customer_id)]
        np.testing.assert_allclose(got, member[numeric].median().to_numpy(), rtol=1e-12, equal_nan=True)
    assert np.isnan(by_seg[("d", "empty_z")][2]) and by_seg[("c", "only")][0] == f.x[5]
    np.testing.assert_allclose(by_base[None], f[numeric].median().to_numpy(), rtol=1e-12)
    in_b = f[f.customer_id.isin(a[a.scheme == "b"].customer_id)]
    np.testing.assert_allclose(by_base["b"], in_b[numeric].median().to_numpy(), rtol=1e-12)
    assert len(in_b) < len(f)
