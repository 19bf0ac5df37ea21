"""One purchase definition: features, churn labels, the BTYD summary and the recency states
agree on what a purchase is ($0 counts, returns never; net-negative days are kept and
reported)."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from segflow.features import REQUIRED_TABLES, customer_features, is_purchase_line
from segflow.models import btyd_summary
from segflow.models._churn_data import eligible_customers
from segflow.store import Store

S = dt.date(2024, 6, 1)
ROWS = [
    # (id, customer, ts, amount, is_return)
    ("a1", "free", "2024-01-10 10:00", 0.0, False),  # only a free item: a purchase
    ("b1", "mixed", "2024-02-01 09:00", 10.0, False),  # +10 and -60 on one day
    ("b2", "mixed", "2024-02-01 17:00", -60.0, True),
    ("b3", "mixed", "2024-03-01 09:00", 40.0, False),
    ("b4", "mixed", "2024-04-01 09:00", 50.0, False),
    ("c1", "returns", "2024-02-02 09:00", -20.0, True),  # only a return: never a purchase
    ("d1", "flagged", "2024-02-03 09:00", 30.0, True),  # flagged return, positive amount
]


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["transaction_id", "customer_id", "ts", "amount",
                                        "is_return"])
    frame["ts"] = pd.to_datetime(frame["ts"])
    return frame


def test_the_definition_line_by_line(tx):
    flags = ibis.memtable(tx).select(buy=is_purchase_line).to_pandas()["buy"].tolist()
    assert flags == [True, True, False, True, True, False, False]


def test_features_churn_and_btyd_agree(tx):
    store = Store(":memory:")
    store.append("transactions", pa.Table.from_pandas(tx, preserve_index=False))
    tables = {n: store.table(n) for n in REQUIRED_TABLES}
    f = customer_features(tables, S).to_pandas().set_index("customer_id")
    assert f.orders_total.to_dict() == {"flagged": 0, "free": 1, "mixed": 3, "returns": 0}
    assert f.loc["mixed", "monetary"] == 10.0 + 40.0 + 50.0 - 60.0 - 0.0
    assert pd.isna(f.loc["free", "avg_order_value"])  # no paid order
    assert f.loc["mixed", "avg_order_value"] == pytest.approx(100.0 / 3)
    eligible = eligible_customers(store.table("transactions"), S).to_pandas().customer_id
    assert sorted(eligible) == ["free", "mixed"]
    with pytest.warns(UserWarning, match="1 purchase days have more returns than purchases"):
        summary = btyd_summary(store.table("transactions"), calibration_end=S,
                               time_unit="D").to_pandas().set_index("customer_id")
    assert sorted(summary.index) == ["free", "mixed"]
    assert summary.loc["mixed", "x"] == 2  # three purchase days, the net-negative one kept
    assert summary.loc["mixed", "monetary_value"] == 45.0  # (40 + 50) / 2 repeat days
    assert summary.loc["free", "x"] == 0
