"""``segflow run`` with huge currencies: the full run and a new month (the feature state
carried) complete, and the stored money features are exact sums.

A CSV project (the pipeline fixture's customers and transactions) with lines of 9.3e12 and
5e13 currency units, sums past 9.22e12 from several lines and cents (0.1 + 0.2 vs 0.3): before
money was summed as decimals these runs failed (a DuckDB conversion error: the amounts'
millionths overflowed 64-bit integers). The stored ``monetary``, ``monetary_12m``,
``monetary_prev_12m``, ``avg_order_value`` and ``return_rate`` equal sums of Python
``decimal.Decimal`` converted to float (tests/features/test_huge_money.py).
"""

from __future__ import annotations

import datetime as dt
import warnings

import pandas as pd
import pytest
from tests.features.test_huge_money import assert_money
from tests.pipeline._fixture import PROJECT_TOML, fixture_tables

pytestmark = pytest.mark.slow

SOURCES = """
[[sources]]
name = "crm"
table = "customers"
path = "{folder}/customers.csv"
format = "csv"
[sources.columns]
customer_id = "customer_id"
created_at = "created_at"
gender = "gender"
region = "region"

[[sources]]
name = "orders"
table = "transactions"
path = "{folder}/transactions.csv"
format = "csv"
[sources.columns]
transaction_id = "transaction_id"
customer_id = "customer_id"
ts = "ts"
amount = "amount"
quantity = "quantity"
category = "category"
channel = "channel"
is_return = "is_return"
"""


def _huge(cust: str, ts: str, amount: float, tid: str, *, ret: bool = False) -> dict:
    return dict(transaction_id=tid, customer_id=cust, ts=pd.Timestamp(ts), amount=amount,
                quantity=-1.0 if ret else 1.0, category="books", channel="web", is_return=ret)


#: Three customers of the fixture get huge (or cent) amounts; their other lines are removed.
#: One line per transaction id (ingest keys transactions by their id); returns negative.
HUGE_LINES = [
    _huge("C000", "2024-01-10 10:00", 9.3e12, "H1"),
    _huge("C000", "2024-03-10 10:00", 5e13, "H2"),
    _huge("C000", "2024-03-10 10:00", 9.3e12, "H3"),
    _huge("C000", "2024-05-10 10:00", -1e12, "H1-ret", ret=True),
    _huge("C000", "2024-06-10 10:00", -2.5e12, "H2-ret", ret=True),
    _huge("C001", "2024-01-05 09:00", 4e12, "K1"),
    _huge("C001", "2024-01-05 09:00", 4e12, "K2"),
    _huge("C001", "2024-01-05 09:00", 4000000000000.5, "K3"),
    _huge("C001", "2024-04-05 09:00", 4.5e12, "K4"),
    _huge("C001", "2024-06-15 09:00", 3e12, "K5"),
    _huge("C002", "2024-02-15 12:00", 0.1, "C1"),
    _huge("C002", "2024-02-15 12:00", 0.2, "C2"),
    _huge("C002", "2024-04-15 12:00", 0.3, "C3"),
    _huge("C002", "2024-06-15 12:00", -0.1, "C1-ret", ret=True),
]


def _transactions() -> pd.DataFrame:
    tx = fixture_tables()["transactions"].to_pandas()
    tx = tx[~tx.customer_id.isin(["C000", "C001", "C002"])]
    return pd.concat([tx, pd.DataFrame(HUGE_LINES)], ignore_index=True)


def _write(frame: pd.DataFrame, path) -> None:  # noqa: ANN001
    out = frame.copy()
    for col in ("ts", "created_at"):
        if col in out.columns:
            out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(path, index=False)


def _stored(project) -> pd.DataFrame:  # noqa: ANN001
    return project.store.raw.execute("SELECT * FROM customer_features").df().set_index("customer_id")


def _ingest(project, lines: int) -> None:  # noqa: ANN001
    """Ingest, and check that every one of the ``lines`` transaction lines is stored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        project.ingest()
    assert project.store.raw.execute("SELECT count(*) FROM transactions").fetchone()[0] == lines


def test_full_run_and_new_month_store_exact_sums_of_huge_amounts(tmp_path, monkeypatch):
    import segflow.features._stored_state as stored_state
    from segflow.project import Project

    tx = _transactions()
    _write(fixture_tables()["customers"].to_pandas(), tmp_path / "customers.csv")
    early = tx[tx.ts < pd.Timestamp("2024-06-01")]
    _write(early, tmp_path / "transactions.csv")
    project = Project.init(tmp_path / "proj",
                           toml_text=PROJECT_TOML + SOURCES.format(folder=tmp_path))
    _ingest(project, len(early))
    full = project.run()  # every snapshot: the one pass (and its feature state)
    assert full.snapshots_computed[-1] == dt.date(2024, 6, 1)
    assert_money(_stored(project), dt.date(2024, 6, 1), None, HUGE_LINES)
    # the new month: June's lines loaded, one new snapshot from the stored state carried on
    _write(tx, tmp_path / "transactions.csv")
    _ingest(project, len(tx))
    carried = []
    real = stored_state.next_state
    monkeypatch.setattr(stored_state, "next_state",
                        lambda *a, **k: carried.append(a[2]) or real(*a, **k))
    late = project.run()
    assert late.snapshots_computed == [dt.date(2024, 7, 1)] and carried == [dt.date(2024, 6, 1)]
    got = _stored(project)
    assert_money(got, dt.date(2024, 7, 1), None, HUGE_LINES)
    assert got.loc["C000", "monetary"] == 9.3e12 + 5e13 + 9.3e12 - 1e12 - 2.5e12
    assert got.loc["C002", "monetary"] == 0.5  # 0.1 + 0.2 + 0.3 - 0.1 (doubles: 0.5000000000000001)
    project.close()
