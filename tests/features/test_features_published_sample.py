"""Features on real data: the CDNOW 1/10 sample (Fader, Hardie & Lee 2005).

Published facts of the calibration period 1997-01-01 .. 1997-09-30 (see the data README):
2,357 customers, all first buying in 1997 Q1, of whom 946 are repeat buyers (more than one
distinct purchase day). A snapshot at 1997-10-01 uses exactly the calibration period.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from segflow.features import REQUIRED_TABLES, customer_features
from segflow.store import Store

PUBLISHED = {"customers": 2357, "repeat_buyers": 946}


def _store(cdnow_dir) -> Store:
    raw = pd.read_csv(cdnow_dir / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "sample_id", "date", "cds", "dollars"])
    tx = pd.DataFrame({
        "transaction_id": [f"r{i}" for i in range(len(raw))],
        "customer_id": raw["master_id"].astype(str),
        "ts": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
        "amount": raw["dollars"].astype(float),
        "quantity": raw["cds"].astype(float),
        "is_return": False,
    })
    store = Store(":memory:")
    store.append("transactions", pa.Table.from_pandas(tx, preserve_index=False))
    return store


def test_cdnow_calibration_period_counts(cdnow_dir):
    store = _store(cdnow_dir)
    tables = {name: store.table(name) for name in REQUIRED_TABLES}
    f = customer_features(tables, dt.date(1997, 10, 1)).to_pandas()
    assert len(f) == PUBLISHED["customers"]
    # ipt_mean_days is defined exactly for customers with two or more purchase days
    assert int(f["ipt_mean_days"].notna().sum()) == PUBLISHED["repeat_buyers"]
    assert f["first_purchase_date"].max() < pd.Timestamp("1997-04-01")
    # everyone's first record is in 1997 Q1: tenure between 1997-03-31 and 1997-01-01 to s
    assert f["tenure_days"].notna().all()
    assert f["tenure_days"].max() == (dt.date(1997, 10, 1) - dt.date(1997, 1, 1)).days
    assert f["tenure_days"].min() >= (dt.date(1997, 10, 1) - dt.date(1997, 3, 31)).days
    # 8 customers only have $0 records: purchase occasions (one purchase definition, as
    # the BTYD summary and the published counts have it), but no paid order
    assert int(f["recency_days"].isna().sum()) == 0
    assert int((f["orders_total"] >= 1).sum()) == PUBLISHED["customers"]
    assert int(f["avg_order_value"].isna().sum()) == 8
    store.close()
