"""A small synthetic store with one campaign whose effects are planted: a purchase-rate lift
in the `low` segment only, and more `low` -> `mid` moves among treated customers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from segflow.store import Store

SEGMENTS = {"high": 1, "mid": 2, "low": 3}
SNAPSHOTS = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
BASE_RATE = {"high": 0.30, "mid": 0.15, "low": 0.05}
PLANTED_LIFT = {"high": 0.0, "mid": 0.0, "low": 0.10}


@dataclass
class Fixture:
    store: Store
    exposures: pd.DataFrame
    transactions: pd.DataFrame
    assignments: pd.DataFrame
    scores: pd.DataFrame
    customers: pd.DataFrame


def build_store(path: str = ":memory:", seed: int = 11, n: int = 6000) -> Fixture:
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:05d}" for i in range(n)])
    seg0 = rng.choice(list(SEGMENTS), n, p=[0.2, 0.3, 0.5])
    treated = rng.random(n) < 0.7
    arm = np.where(treated, "treatment", "control")
    exposed = pd.Timestamp("2024-01-10") + pd.to_timedelta(rng.integers(0, 10 * 86400, n), "s")
    exp = pd.DataFrame({"campaign_id": "c1", "customer_id": ids, "ts": exposed, "arm": arm,
                        "exposure_type": "send"})
    opens = exp[treated & (rng.random(n) < 0.3)].assign(exposure_type="open")
    opens["ts"] = opens.ts + pd.Timedelta(hours=5)
    mixed = exp.iloc[:2].assign(arm=lambda d: np.where(d.arm == "control", "treatment", "control"))
    other = exp.iloc[:50].assign(campaign_id="c0", ts=pd.Timestamp("2023-06-01"))
    exposures = pd.concat([exp, opens, mixed, other], ignore_index=True)
    # purchases: inside the 30-day window with the planted rates, plus noise before/after it
    p = pd.Series(seg0).map(BASE_RATE).to_numpy() + treated * pd.Series(seg0).map(PLANTED_LIFT).to_numpy()
    buys = rng.random(n) < p
    tx_in = pd.DataFrame({"customer_id": ids[buys],
                          "ts": exposed[buys] + pd.to_timedelta(rng.integers(0, 29 * 86400, buys.sum()), "s")})
    before = rng.random(n) < 0.5
    tx_before = pd.DataFrame({"customer_id": ids[before],
                              "ts": exposed[before] - pd.Timedelta(days=3)})
    late = rng.random(n) < 0.3
    tx_late = pd.DataFrame({"customer_id": ids[late], "ts": exposed[late] + pd.Timedelta(days=31)})
    tx = pd.concat([tx_in, tx_before, tx_late], ignore_index=True)
    tx["amount"] = np.round(rng.gamma(2.0, 25.0, len(tx)), 2)
    tx["is_return"] = rng.random(len(tx)) < 0.05
    tx.loc[tx.is_return, "amount"] *= -1
    tx["transaction_id"] = [f"T{i}" for i in range(len(tx))]
    tx["promo_code"] = np.where(rng.random(len(tx)) < pd.Series(tx.customer_id.str[-1:].astype(int) / 20).to_numpy(),
                                "SAVE10", None)
    # assignments: before; after with more low -> mid moves for treated; some lapse (absent)
    up_p = np.where(seg0 == "low", np.where(treated, 0.30, 0.10), 0.0)
    seg1 = np.where(rng.random(n) < up_p, "mid", seg0)
    gone = rng.random(n) < 0.05
    rows = []
    for snap, seg, keep in [(SNAPSHOTS[0], seg0, np.ones(n, bool)), (SNAPSHOTS[1], seg1, ~gone),
                            (SNAPSHOTS[2], seg1, ~gone)]:
        rows.append(pd.DataFrame({"scheme": "value", "scheme_version": "1", "snapshot_date": snap,
                                  "customer_id": ids[keep], "segment": seg[keep],
                                  "segment_rank": pd.Series(seg[keep]).map(SEGMENTS).to_numpy(),
                                  "run_id": "r1"}))
    assignments = pd.concat(rows, ignore_index=True)
    scores = pd.DataFrame({"snapshot_date": SNAPSHOTS[1], "customer_id": ids, "model": "clv",
                           "score": "clv_12m", "value": np.round(rng.gamma(2.0, 50.0, n), 2),
                           "run_id": "r1"})
    scores = pd.concat([scores, scores.assign(score="p_alive", value=rng.random(n))])
    customers = pd.DataFrame({
        "customer_id": ids, "region": rng.choice(["north", "south", None], n, p=[0.45, 0.45, 0.1]),
        "created_at": pd.Timestamp("2024-01-15") - pd.to_timedelta(rng.integers(0, 800, n), "D")})
    customers.loc[customers.index[-100:], "created_at"] = pd.NaT
    store = Store(path)
    store.append("customers", pa.Table.from_pandas(customers, preserve_index=False))
    store.append("campaign_exposures", pa.Table.from_pandas(exposures, preserve_index=False))
    store.append("transactions", pa.Table.from_pandas(tx, preserve_index=False))
    store.append("segment_assignments", pa.Table.from_pandas(assignments, preserve_index=False))
    store.append("customer_scores", pa.Table.from_pandas(scores, preserve_index=False))
    return Fixture(store, exposures, tx, assignments, scores, customers)


@pytest.fixture(autouse=True)
def _one_thread():
    """Gradient boosting with OpenMP threads on a busy 2-core machine is ~100x slower than
    single-threaded (oversubscription); run these tests with one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def campaign_project(tmp_path_factory: pytest.TempPathFactory):
    """A project folder (segflow.toml + store file) holding the same synthetic campaign."""
    folder = tmp_path_factory.mktemp("campaign_project")
    (folder / "segflow.toml").write_text('[project]\nname = "campaign test"\ncurrency = "GBP"\n')
    fx = build_store(str(folder / "segflow.duckdb"), n=3000)
    fx.store.close()
    return folder


@pytest.fixture(scope="session")
def store_builder():
    """The builder itself, for tests that need their own store (test modules cannot import
    conftest under importlib mode)."""
    return build_store


@pytest.fixture(scope="session")
def campaign_store() -> Fixture:
    return build_store()
