"""Ingest under the one purchase definition: $0 lines kept, lines without an order id form
one order per customer and timestamp, de-duplication only on a named key, and customer
attribute history (valid_from / valid_to) kept row by row."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pandas as pd

from segflow.config import Settings
from segflow.features import REQUIRED_TABLES, customer_features
from segflow.sources import ingest
from segflow.store import Store

NOW = dt.datetime(2025, 1, 1)
LINES = (
    "cust,ts,amount,sku\n"
    "a,2024-03-01 10:00,5.00,P1\n"
    "a,2024-03-01 10:00,5.00,P1\n"  # the same item twice in one basket
    "a,2024-03-01 10:00,7.50,P2\n"
    "a,2024-04-02 09:00,0,P3\n"  # a free item: a purchase occasion worth 0
    "b,2024-03-05 12:00,20.00,P1\n"
)


def _project(root: Path, extra: str = "") -> Store:
    (root / "lines.csv").write_text(LINES, encoding="utf-8")
    (root / "segflow.toml").write_text(f"""
[[sources]]
name = "shop"
table = "transactions"
path = "lines.csv"
{extra}
[sources.columns]
customer_id = "cust"
ts = "ts"
amount = "amount"
product_id = "sku"
""", encoding="utf-8")
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(root), root, now=NOW)
    assert report.reconciles
    return store


def test_lines_without_order_id_are_kept_and_form_one_order_per_timestamp(tmp_path):
    store = _project(tmp_path)
    rows = store.sql("SELECT customer_id, transaction_id, amount, product_id FROM transactions "
                     "ORDER BY customer_id, ts, product_id").to_pandas()
    assert len(rows) == 5  # nothing dropped as a duplicate, the $0 line kept
    assert rows.transaction_id.isna().all()
    f = customer_features({n: store.table(n) for n in REQUIRED_TABLES}, dt.date(2024, 6, 1))
    f = f.to_pandas().set_index("customer_id")
    # a: the 10:00 basket (3 lines) is one order, the free item a second one
    assert f.loc["a", "frequency"] == 2 and f.loc["a", "orders_total"] == 2
    assert f.loc["a", "monetary"] == 17.5
    # spend averages divide by paid orders only: 17.5 / 1
    assert f.loc["a", "avg_order_value"] == 17.5
    assert f.loc["a", "recency_days"] == (dt.date(2024, 6, 1) - dt.date(2024, 4, 2)).days
    assert f.loc["b", "frequency"] == 1


def test_zero_amount_rule_and_duplicate_key_are_opt_in(tmp_path):
    store = _project(tmp_path, 'zero_amount = "quarantine"\n'
                               'duplicate_key = ["customer_id", "ts", "amount", "product_id"]')
    assert store.sql("SELECT count(*) FROM transactions").column(0)[0].as_py() == 3
    q = store.sql("SELECT row_number, rule FROM quarantine").to_pandas()
    assert q.values.tolist() == [[4, "zero_amount"]]
    d = store.sql("SELECT row_number, kind, duplicate_of_row FROM ingest_duplicates").to_pandas()
    assert d.values.tolist() == [[2, "in_load", 1]]


def test_customer_history_rows_are_kept_and_used_at_each_snapshot(tmp_path):
    (tmp_path / "crm.csv").write_text(
        "id,created,region,city,from,to\n"
        "m,2023-01-10,London,London,,2024-03-10\n"
        "m,2023-01-10,Paris,Paris,2024-03-10,\n"
        "s,2023-02-01,Wales,Cardiff,,\n", encoding="utf-8")
    (tmp_path / "segflow.toml").write_text("""
[[sources]]
name = "crm"
table = "customers"
path = "crm.csv"
[sources.columns]
customer_id = "id"
created_at = "created"
region = "region"
city = "city"
valid_from = "from"
valid_to = "to"
""", encoding="utf-8")
    store = Store(":memory:")
    report = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
    assert report.to_pandas().rows_accepted.tolist() == [3]
    tables = {n: store.table(n) for n in REQUIRED_TABLES}

    def full(day: dt.date) -> pd.DataFrame:
        return customer_features(tables, day).to_pandas().set_index("customer_id")

    assert full(dt.date(2024, 3, 10)).loc["m", "region"] == "London"  # move at exactly s
    assert full(dt.date(2024, 3, 11)).loc["m", "region"] == "Paris"
    assert full(dt.date(2024, 3, 11)).loc["m", "signup_date"] == pd.Timestamp("2023-01-10")
    assert full(dt.date(2024, 3, 11)).loc["s", "region"] == "Wales"
    # a second export with the same rows in another order: all three are already stored
    head, *rows = (tmp_path / "crm.csv").read_text().splitlines()
    (tmp_path / "crm2.csv").write_text("\n".join([head, *rows[::-1]]) + "\n", encoding="utf-8")
    toml = (tmp_path / "segflow.toml").read_text().replace('"crm.csv"', '"crm*.csv"')
    (tmp_path / "segflow.toml").write_text(toml, encoding="utf-8")
    again = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW).to_pandas()
    assert again.set_index("source_file").loc["crm2.csv", "rows_duplicate"] == 3
    assert store.sql("SELECT count(*) FROM customers").column(0)[0].as_py() == 3
