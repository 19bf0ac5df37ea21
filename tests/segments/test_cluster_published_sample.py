"""Clustering real customers: RFM of the CDNOW sample (2,357 customers) at 1997-10-01.

No clustering of CDNOW is published, so this checks what holds on any real data: the log rule
fires on the skewed columns (by scipy's skewness, computed here independently), the engine
assignment equals ``predict`` on real ties and skew, and the profile adds up.
"""

from __future__ import annotations

import warnings

import ibis
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from segflow.segments._cluster import KMeansSegmenter
from segflow.segments._profile import profile_segments

SNAPSHOT = pd.Timestamp("1997-10-01")


@pytest.fixture(scope="module")
def rfm(cdnow_dir) -> pd.DataFrame:
    raw = pd.read_csv(
        cdnow_dir / "CDNOW_sample.txt", sep=r"\s+", header=None,
        names=["master_id", "sample_id", "date", "cds", "dollars"], dtype={"master_id": str},
    )
    raw["date"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    cal = raw[raw["date"] < SNAPSHOT]
    g = cal.groupby("master_id")
    return pd.DataFrame(
        {
            "recency_days": (SNAPSHOT - g["date"].max()).dt.days.astype(float),
            "frequency": g["date"].nunique().astype(float),
            "monetary": g["dollars"].sum(),
        }
    ).rename_axis("customer_id").reset_index()


def test_cdnow_rfm_clusters(rfm):
    X = rfm[["recency_days", "frequency", "monetary"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # stability warnings are data, not errors
        seg = KMeansSegmenter(k_range=(2, 6), n_bootstrap=10, random_state=0).fit(X)
    logged = {s.name for s in seg.prep_.numeric if s.log1p}
    expected = {c for c in X.columns if X[c].min() >= 0 and stats.skew(X[c]) > 1}
    assert logged == expected and {"frequency", "monetary"} <= logged
    con = ibis.duckdb.connect()
    table = con.create_table("rfm", rfm)
    out = seg.assign(table).to_pandas().set_index("customer_id").loc[rfm["customer_id"]]
    assert np.array_equal(out["segment_rank"].to_numpy(), seg.predict(X))
    assert 2 <= seg.k_ <= 6 and len(seg.quality_) == 5
    profile = profile_segments(table, con.create_table("a", out.reset_index()))
    assert profile.table["size"].sum() == len(rfm) == 2357
    assert profile.table["revenue_share"].sum() == pytest.approx(1.0)
    # the segment with the highest mean spend has more orders than the base on average
    top = profile.means["monetary"].idxmax()
    assert profile.means.loc[top, "frequency"] > rfm["frequency"].mean()
