"""Synthetic data with planted churn and migration mechanisms, shared by the churn tests.

* :func:`synth_transactions`: customers buy as a Poisson process at their own rate until an
  exponential lifetime ends (a buy-till-you-die mechanism), so the chance of no purchase in the
  next N days rises with recency and falls with frequency.
* :func:`planted_features`: a feature table with a known churn probability
  ``p = sigmoid(-1 + recency/40 - frequency/2 + region effect)``.
* :func:`planted_migration`: current segments and a feature ``engagement`` that drives the
  move up or down one rung of a four-segment ladder.

The tests at the bottom check the generators themselves.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

START = dt.date(2023, 1, 1)
END = dt.date(2025, 1, 1)
REGION_EFFECT = {"north": 0.0, "south": 0.6, "east": -0.6, "west": 0.0}
LADDER = ("bronze", "silver", "gold", "platinum")


def synth_transactions(
    n_customers: int = 1500, *, start: dt.date = START, end: dt.date = END, seed: int = 0
) -> pd.DataFrame:
    """Canonical transactions of a buy-till-you-die population (about 15 rows a customer)."""
    rng = np.random.default_rng(seed)
    span = (end - start).days
    birth = rng.uniform(0, 180, n_customers)
    rate = rng.gamma(2.0, 1 / 60, n_customers)  # purchases per day, mean 1/30
    life = rng.exponential(300, n_customers)
    alive = np.minimum(birth + life, span - 1e-3) - birth
    counts = rng.poisson(rate * alive) + 1  # the first purchase is at birth
    cust = np.repeat(np.arange(n_customers), counts)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    offset = rng.uniform(0, 1, counts.sum()) * alive[cust]
    offset[first] = 0.0
    seconds = np.round((birth[cust] + offset) * 86400).astype("int64")
    ts = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")
    n = len(cust)
    is_return = rng.random(n) < 0.03
    amount = np.round(rng.gamma(2.0, 25.0, n), 2)
    amount[is_return] *= -1
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i:07d}" for i in range(n)],
            "customer_id": [f"c{c:05d}" for c in cust],
            "ts": ts.astype("datetime64[us]"),
            "amount": amount,
            "is_return": is_return,
        }
    )


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def planted_features(n: int, *, seed: int = 0, snapshots: int = 4) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Features, true churn probability, drawn labels and a snapshot index per row."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "recency_days": rng.exponential(60, n),
            "frequency": rng.poisson(3, n).astype(float),
            "region": rng.choice(list(REGION_EFFECT), n),
            "noise": rng.normal(size=n),
        }
    )
    z = -1 + X.recency_days / 40 - X.frequency / 2 + X.region.map(REGION_EFFECT)
    p = sigmoid(z.to_numpy())
    y = (rng.random(n) < p).astype(int)
    groups = np.sort(rng.integers(0, snapshots, n))
    return X, p, y, groups


def planted_migration(n: int, *, seed: int = 0, snapshots: int = 4) -> pd.DataFrame:
    """Current segment, engagement, next segment and snapshot index per row.

    With engagement e ~ N(0, 1): the customer moves one rung up with probability
    sigmoid(2e - 2), one rung down with probability sigmoid(-2e - 2) (clamped at the ends),
    and otherwise stays.
    """
    rng = np.random.default_rng(seed)
    rung = rng.integers(0, len(LADDER), n)
    e = rng.normal(size=n)
    u = rng.random(n)
    up, down = sigmoid(2 * e - 2), sigmoid(-2 * e - 2)
    move = np.where(u < up, 1, np.where(u < up + down, -1, 0))
    nxt = np.clip(rung + move, 0, len(LADDER) - 1)
    names = np.asarray(LADDER, dtype=object)
    return pd.DataFrame(
        {
            "segment": names[rung],
            "engagement": e,
            "next_segment": names[nxt],
            "snapshot": np.sort(rng.integers(0, snapshots, n)),
        }
    )


# -- checks of the generators ---------------------------------------------------------------
def test_synth_transactions_shape_and_window():
    tx = synth_transactions(300, seed=1)
    assert tx.ts.min() >= pd.Timestamp(START)
    assert tx.ts.max() < pd.Timestamp(END)
    assert tx.customer_id.nunique() == 300
    assert (tx.amount[tx.is_return] < 0).all() and (tx.amount[~tx.is_return] > 0).all()


def test_planted_features_rates():
    X, p, y, _ = planted_features(20_000, seed=2)
    # the drawn labels follow the planted probabilities (binomial sd ~ 0.0033)
    assert abs(y.mean() - p.mean()) < 0.015
