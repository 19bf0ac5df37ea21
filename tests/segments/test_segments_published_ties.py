"""RFM on the CDNOW sample with the old (id-ordered ntile) and the new (quantile) tie rule:
the segment sizes and score counts quoted in docs/segments.md."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from segflow.config import SchemeSettings
from segflow.features import REQUIRED_TABLES, customer_features
from segflow.segments import assign, rfm_scores
from segflow.store import Store

# docs/segments.md, "Ties on real data: CDNOW" (snapshot 1998-07-01)
SIZES = {  # segment: (ntile, quantile)
    "Champions": (694, 648), "Loyal": (43, 25), "Potential loyalists": (248, 293),
    "Need attention": (82, 72), "About to sleep": (346, 366), "At risk": (183, 89),
    "Can't lose them": (4, 2), "Hibernating": (403, 258), "Lost": (354, 604),
    "No purchase yet": (0, 0),
}


@pytest.fixture(scope="module")
def features(cdnow_dir):
    raw = pd.read_csv(cdnow_dir / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "sample_id", "date", "cds", "dollars"])
    tx = pa.table({
        # no order id: one order per customer and day (the records of a day are one order)
        "transaction_id": pa.nulls(len(raw), pa.string()),
        "customer_id": raw["master_id"].astype(str),
        "ts": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
        "amount": raw["dollars"].astype(float),
        "is_return": [False] * len(raw),
    })
    store = Store(":memory:")
    store.append("transactions", tx)
    table = customer_features({n: store.table(n) for n in REQUIRED_TABLES},
                              dt.date(1998, 7, 1)).cache()
    yield table
    table.release()
    store.close()


def test_cdnow_rfm_sizes_old_and_new_tie_rule(features):
    got = {}
    for method in ("ntile", "quantile"):
        scheme = SchemeSettings(name="rfm", kind="rfm", score_method=method)
        got[method] = assign(scheme, features).to_pandas().set_index("customer_id").segment
    for segment, (old, new) in SIZES.items():
        assert (got["ntile"] == segment).sum() == old, segment
        assert (got["quantile"] == segment).sum() == new, segment
    assert (got["ntile"] != got["quantile"].loc[got["ntile"].index]).sum() == 444


def test_cdnow_one_order_buyers_all_score_f1(features):
    new = rfm_scores(features).to_pandas()
    new = new[new.recency_days.notna()]
    one = new[new.frequency == 1]
    assert len(new) == 2357 and len(one) == 1218
    assert set(one.f_score) == {1}
    assert new.f_score.value_counts().to_dict() == {1: 1218, 3: 403, 4: 358, 5: 378}
    old = rfm_scores(features, method="ntile").to_pandas()
    old = old[old.frequency == 1]
    assert old.f_score.value_counts().to_dict() == {1: 472, 2: 472, 3: 274}
