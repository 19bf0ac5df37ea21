"""Fixtures shared by the migration tests (imported by name; pytest prepends this folder)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from segflow.store import Store

DATES = [
    dt.date(2024, 1, 1),
    dt.date(2024, 2, 1),
    dt.date(2024, 3, 1),
    dt.date(2024, 4, 1),
    dt.date(2024, 5, 1),
]
RANKS = {"Gold": 1, "Silver": 2, "Bronze": 3}


def tiny_assignments() -> pd.DataFrame:
    """Hand-made history: c1 stays, c2 upgrades, c3 leaves, c4 enters, c5 leaves and comes back,
    c6 skips a period, c7 downgrades twice; plus one row of another scheme that must be ignored."""
    rows = [
        ("c1", 0, "Gold"),
        ("c1", 1, "Gold"),
        ("c1", 2, "Gold"),
        ("c2", 0, "Bronze"),
        ("c2", 1, "Silver"),
        ("c2", 2, "Gold"),
        ("c3", 0, "Silver"),
        ("c4", 1, "Bronze"),
        ("c4", 2, "Bronze"),
        ("c5", 0, "Silver"),
        ("c5", 2, "Silver"),
        ("c6", 0, "Gold"),
        ("c6", 2, "Silver"),
        ("c7", 0, "Gold"),
        ("c7", 1, "Silver"),
        ("c7", 2, "Bronze"),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "k", "segment"])
    frame["scheme"] = "tier"
    frame["scheme_version"] = "1"
    frame["snapshot_date"] = [DATES[k] for k in frame["k"]]
    frame["segment_rank"] = frame["segment"].map(RANKS)
    frame["run_id"] = "r1"
    other = frame.iloc[:1].assign(scheme="other", segment="X")
    return pd.concat([frame, other]).drop(columns="k").reset_index(drop=True)


def random_assignments(n: int = 400, seed: int = 7, presence: float = 0.75) -> pd.DataFrame:
    """Random histories over five snapshots: customers are present with probability
    ``presence`` at each date (so they enter, leave, come back and skip), in a random tier."""
    rng = np.random.default_rng(seed)
    present = rng.random((n, len(DATES))) < presence
    seg = rng.choice(list(RANKS), size=(n, len(DATES)), p=[0.2, 0.3, 0.5])
    cust, k = np.nonzero(present)
    frame = pd.DataFrame(
        {
            "scheme": "tier",
            "scheme_version": "1",
            "snapshot_date": [DATES[i] for i in k],
            "customer_id": [f"c{i:04d}" for i in cust],
            "segment": seg[cust, k],
        }
    )
    frame["segment_rank"] = frame["segment"].map(RANKS).astype("int32")
    frame["run_id"] = "r1"
    return frame


def random_transactions(n_customers: int = 400, n: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-12-15")
    ts = start + pd.to_timedelta(rng.integers(0, 150 * 24 * 3600, n), unit="s")
    amount = np.round(rng.gamma(2.0, 20.0, n), 2)
    is_return = rng.random(n) < 0.05
    amount[is_return] *= -1
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "customer_id": [f"c{i:04d}" for i in rng.integers(0, n_customers, n)],
            "ts": ts.astype("datetime64[us]"),
            "amount": amount,
            "is_return": is_return,
        }
    )


def make_store(assignments: pd.DataFrame, transactions: pd.DataFrame | None = None) -> Store:
    store = Store(":memory:")
    table = pa.Table.from_pandas(assignments, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("snapshot_date"),
        "snapshot_date",
        pa.array(assignments["snapshot_date"].tolist(), pa.date32()),
    )
    store.append("segment_assignments", table)
    if transactions is not None:
        store.append("transactions", pa.Table.from_pandas(transactions, preserve_index=False))
    return store


def count_by_hand(
    assignments: pd.DataFrame, d1: dt.date, d2: dt.date
) -> dict[tuple[str, str], int]:
    """Independent count with plain dicts: state at d1 (or (new)) -> state at d2 (or (gone))."""
    a = assignments[assignments["scheme"] == "tier"]
    at1 = dict(
        zip(
            a.loc[a["snapshot_date"] == d1, "customer_id"],
            a.loc[a["snapshot_date"] == d1, "segment"],
            strict=True,
        )
    )
    at2 = dict(
        zip(
            a.loc[a["snapshot_date"] == d2, "customer_id"],
            a.loc[a["snapshot_date"] == d2, "segment"],
            strict=True,
        )
    )
    counts: dict[tuple[str, str], int] = {}
    for cid in set(at1) | set(at2):
        key = (at1.get(cid, "(new)"), at2.get(cid, "(gone)"))
        counts[key] = counts.get(key, 0) + 1
    return counts
