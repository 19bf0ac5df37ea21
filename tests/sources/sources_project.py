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

#: ORDERS_TOML with the path and extra source settings to fill in (the hostile-input tests).
ORDERS_TOML_AT = ORDERS_TOML.replace('path = "orders.csv"', 'path = "{path}"\n{extra}')
ORDERS_HEADER = b"order_id,customer,date,amount\n"


def orders_project(root: Path, files: dict[str, bytes], path: str = "orders.csv",
                   extra: str = "") -> Path:
    """A project at ``root`` with the orders source reading ``path`` and ``files`` written."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "segflow.toml").write_text(ORDERS_TOML_AT.format(path=path, extra=extra))
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def ingest_quietly(root: Path, store) -> None:
    """``segflow.sources.ingest`` of the project at ``root`` into ``store``, warnings off."""
    import warnings

    from segflow.config import Settings
    from segflow.sources import ingest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(root), root, now=NOW)


def stored_rows(store, sql: str) -> list[tuple]:
    """The rows of ``sql`` on ``store`` as tuples."""
    return [tuple(r.values()) for r in store.sql(sql).to_pylist()]


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
