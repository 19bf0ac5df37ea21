"""A project fed by monthly order files, for refresh tests.

Customers buy at individual Poisson rates from January 2024; one file per month lands in
``data/orders/``. :func:`add_month` writes the next month's file; ``shock=True`` makes it a
month in which most customers stop buying and the rest spend four times as much (drift that
every check must see).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SRC = Path(__file__).resolve().parents[2] / "src"

TOML = """
[project]
name = "refresh fixture"
memory_limit = "2GB"

[periods]
granularity = "month"

[[sources]]
name = "crm"
table = "customers"
path = "data/customers.csv"
[sources.columns]
customer_id = "id"
created_at = "signup"
email = "email"

[[sources]]
name = "shop"
table = "transactions"
path = "data/orders"
format = "csv"
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "ts"
amount = "amount"

[[schemes]]
name = "rfm"
kind = "rfm"

[[schemes]]
name = "lifecycle"
kind = "lifecycle"
"""

N_CUSTOMERS = 300


def make_project(directory: Path, months: int = 5, seed: int = 1) -> Path:
    """The project folder with customers and ``months`` monthly order files."""
    (directory / "data" / "orders").mkdir(parents=True)
    (directory / "segflow.toml").write_text(TOML)
    ids = [f"C{i:04d}" for i in range(N_CUSTOMERS)]
    pd.DataFrame({"id": ids, "signup": "2023-12-15", "email": [f"{c.lower()}@example.com" for c in ids]}
                 ).to_csv(directory / "data" / "customers.csv", index=False)
    for m in range(months):
        add_month(directory, m, seed=seed)
    return directory


def add_month(directory: Path, m: int, *, seed: int = 1, shock: bool = False) -> Path:
    """Write the order file of month ``m`` (0 = January 2024)."""
    rng = np.random.default_rng([seed, m])
    rates = np.random.default_rng(seed).gamma(1.5, 0.8, N_CUSTOMERS)  # orders a month
    spend = np.random.default_rng(seed + 1).gamma(4.0, 15.0, N_CUSTOMERS)
    if shock:
        active = rng.random(N_CUSTOMERS) < 0.15
        rates, spend = np.where(active, rates, 0.0), spend * 4
    start = dt.date(2024, 1, 1) + pd.DateOffset(months=m)
    days = (start + pd.DateOffset(months=1) - start).days
    rows = []
    for i, n in enumerate(rng.poisson(rates)):
        for k in range(n):
            ts = pd.Timestamp(start) + pd.Timedelta(days=int(rng.integers(days)), hours=int(rng.integers(24)))
            rows.append((f"O{m:02d}-{i:04d}-{k}", f"C{i:04d}", ts.isoformat(sep=" "),
                         round(float(spend[i] * rng.gamma(5, 0.2)), 2)))
    path = directory / "data" / "orders" / f"orders-{start:%Y-%m}.csv"
    pd.DataFrame(rows, columns=["order_id", "customer", "ts", "amount"]).to_csv(path, index=False)
    return path


def segflow_process(*args: str, **kwargs) -> subprocess.Popen:
    """``segflow ARGS`` in a subprocess importing this checkout's segflow."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen([sys.executable, "-c", "from segflow.cli import main; main()", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def store_state(path: Path) -> dict[str, object]:
    """Counts and an order-independent checksum of each table the refresh writes."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        out: dict[str, object] = {}
        for table in ("transactions", "loads", "segment_assignments", "customer_scores", "runs",
                      "alerts", "customer_features"):
            exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                 [table]).fetchone()[0]
            if exists:
                out[table] = con.execute(
                    f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {table} AS t").fetchone()
        return out
    finally:
        con.close()
