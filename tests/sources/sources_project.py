"""Helpers of the sources tests: a project folder built from tests/sources/fixtures."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
NOW = dt.datetime(2024, 6, 1)

#: One CSV source, orders.csv, mapped to transactions (the small single-file tests).
ORDERS_TOML = """
[[sources]]
name = "orders"
table = "transactions"
path = "orders.csv"
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "date"
amount = "amount"
"""

PROJECT_TOML = """
[[sources]]
name = "crm"
table = "customers"
path = "customers.csv"
[sources.columns]
created_at = "signup_date"
[sources.value_maps.gender]
M = "male"
F = "female"
X = "other"

[[sources]]
name = "shop"
table = "transactions"
path = "order_lines_latin1.csv"
date_formats = ["%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M"]
rollup = true
credit_note_prefix = "C"
zero_amount = "quarantine"  # opt-in rule (the default keeps $0 lines as purchases)
options = { delimiter = ";", decimal = ",", encoding = "latin-1" }
exclude = { StockCode = ["POST", "DOT", "M"] }
[sources.columns]
transaction_id = "InvoiceNo"
customer_id = "CustomerID"
ts = "InvoiceDate"
amount = "= Quantity * UnitPrice"
quantity = "Quantity"
unit_price = "UnitPrice"

[[sources]]
name = "web"
table = "events"
path = "events_mixed_dates.csv"
date_formats = ["%d/%m/%Y", "%m/%d/%Y"]
[sources.columns]
ts = "date"
event_type = "event"
"""


def make_project(tmp_path: Path, toml: str = PROJECT_TOML) -> Path:
    """Copy the fixture files and a segflow.toml into ``tmp_path``."""
    for f in FIXTURES.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    (tmp_path / "segflow.toml").write_text(toml, encoding="utf-8")
    return tmp_path
