"""A small deterministic project: settings and canonical tables (shared by test folders)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

PROJECT_TOML = """
[project]
name = "pipeline fixture"

[periods]
granularity = "month"

[[schemes]]
name = "rfm"
kind = "rfm"

[[schemes]]
name = "lifecycle"
kind = "lifecycle"

[[schemes]]
name = "tiers"
kind = "value_tiers"

[[schemes]]
name = "rules"
kind = "rules"
default = "other"
rules = [
  { segment = "big spender", when = "monetary >= 300" },
  { segment = "regular", when = "frequency >= 3 and recency_days <= 60" },
]
"""


def fixture_tables(n_customers: int = 60, seed: int = 7) -> dict[str, pa.Table]:
    """Customers with 0-12 purchases between 2024-01-01 and 2024-06-30, a few returns."""
    rng = np.random.default_rng(seed)
    ids = [f"C{i:03d}" for i in range(n_customers)]
    counts = rng.integers(0, 12, n_customers)
    cust = np.repeat(np.arange(n_customers), counts)
    start = np.datetime64("2024-01-01T00:00:00")
    offsets = rng.integers(0, 181 * 24 * 3600, cust.size).astype("timedelta64[s]")
    ts = start + offsets
    amount = np.round(rng.gamma(2.0, 30.0, cust.size), 2)
    is_return = rng.random(cust.size) < 0.05
    amount = np.where(is_return, -amount, amount)
    transactions = pa.table(
        {
            "transaction_id": [f"T{i:05d}" for i in range(cust.size)],
            "customer_id": [ids[c] for c in cust],
            "ts": pa.array(ts.astype("datetime64[us]")),
            "amount": amount,
            "quantity": np.where(is_return, -1.0, 1.0),
            "category": rng.choice(["books", "music", "games"], cust.size),
            "channel": rng.choice(["web", "store"], cust.size),
            "is_return": is_return,
        }
    )
    created = start - np.timedelta64(30, "D") + rng.integers(0, 150, n_customers).astype("timedelta64[D]")
    customers = pa.table(
        {
            "customer_id": ids,
            "created_at": pa.array(created.astype("datetime64[us]")),
            "gender": rng.choice(["female", "male"], n_customers),
            "region": rng.choice(["North", "South"], n_customers),
        }
    )
    return {"transactions": transactions, "customers": customers}


def new_fixture_project(directory):  # noqa: ANN001, ANN201
    """A project at ``directory`` with :data:`PROJECT_TOML` and :func:`fixture_tables` in
    its store, not run (open: the caller closes it)."""
    from segflow.project import Project

    project = Project.init(directory, toml_text=PROJECT_TOML)
    for name, table in fixture_tables().items():
        project.store.append(name, table)
    return project
