"""Migration on real and generated data: CDNOW recency states and the demo's latent groups."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segflow.migration import MarkovChain, markov_clv, pooled_transition_matrix, recency_states
from segflow.store import Store

START = dt.date(1997, 1, 1)
PERIOD_DAYS, N_PERIODS, CAP = 91, 6, 5

#: Pooled recency-state transition counts on CDNOW (5 transitions between the 6 periods),
#: recorded in docs/migration.md; the test below recomputes them independently with numpy.
CDNOW_POOLED = {
    ("1", "1"): 1310,
    ("1", "2"): 2774,
    ("2", "1"): 375,
    ("2", "3"): 2184,
    ("3", "1"): 189,
    ("3", "4"): 1826,
    ("4", "1"): 111,
    ("4", "5"): 1591,
    ("5", "1"): 42,
    ("5", "5"): 1383,
}


@pytest.fixture(scope="module")
def cdnow(cdnow_dir):
    from segflow.datasets import load_cdnow

    raw = load_cdnow(cdnow_dir / "CDNOW_sample.txt")
    tx = pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype(str),
            "ts": raw["date"].astype("datetime64[us]"),
            "amount": raw["amount"].astype(float),
        }
    )
    con = ibis.duckdb.connect()
    yield con.create_table("cdnow_tx", pa.Table.from_pandas(tx, preserve_index=False)), tx
    con.disconnect()


def _states_numpy(tx: pd.DataFrame) -> pd.DataFrame:
    """State per customer and period: the last purchase period with a running maximum."""
    days = (tx["ts"] - pd.Timestamp(START)).dt.days.to_numpy()
    period = days // PERIOD_DAYS
    ids, cust = np.unique(tx["customer_id"].to_numpy(), return_inverse=True)
    bought = np.zeros((len(ids), N_PERIODS), dtype=bool)
    keep = (period >= 0) & (period < N_PERIODS)
    bought[cust[keep], period[keep]] = True
    last = np.maximum.accumulate(np.where(bought, np.arange(N_PERIODS), -1), axis=1)
    state = np.where(last >= 0, np.minimum(np.arange(N_PERIODS) - last + 1, CAP), 0)
    return pd.DataFrame(state, index=ids)


def test_cdnow_recency_states_match_numpy(cdnow):
    table, tx = cdnow
    got = recency_states(table, START, PERIOD_DAYS, N_PERIODS, CAP).execute()
    wide = (
        got.pivot(index="customer_id", columns="period", values="segment_rank")
        .fillna(0)
        .astype(int)
    )
    expected = _states_numpy(tx)
    expected = expected.loc[wide.index]
    np.testing.assert_array_equal(wide.to_numpy(), expected.to_numpy())
    assert len(wide) == 2357  # every customer bought in Q1 1997, so all are in state 1 at period 0
    assert (wide[0] == 1).all()
    ends = sorted(got["snapshot_date"].unique())
    assert pd.Timestamp(ends[-1]).date() == dt.date(1998, 7, 1)  # data end 1998-06-30 inclusive


def test_cdnow_pooled_counts_and_markov_value(cdnow):
    table, tx = cdnow
    states = recency_states(table, START, PERIOD_DAYS, N_PERIODS, CAP)
    pooled = pooled_transition_matrix(states, scheme="recency")
    cells = pooled.to_pandas()
    got = {
        (f, t): int(n)
        for f, t, n in zip(
            cells["from_segment"], cells["to_segment"], cells["customers"], strict=True
        )
        if n > 0
    }
    # independent: consecutive columns of the numpy state matrix
    s = _states_numpy(tx).to_numpy()
    hand: dict[tuple[str, str], int] = {}
    for k in range(N_PERIODS - 1):
        present = s[:, k] > 0
        for f, t in zip(s[present, k], s[present, k + 1], strict=True):
            hand[(str(f), str(t))] = hand.get((str(f), str(t)), 0) + 1
    assert got == hand == CDNOW_POOLED
    # the Markov value per state equals the closed form on the same estimated P
    chain = MarkovChain().fit(pooled)
    p = chain.transition_matrix_.loc[list("12345"), list("12345")]
    np.testing.assert_allclose(p.sum(axis=1).to_numpy(), 1.0)
    rewards = {"1": 10.0, "2": -1.0, "3": -1.0, "4": -1.0, "5": 0.0}
    v = chain.value(rewards, 0.05)
    closed = np.linalg.solve(np.eye(5) - p.to_numpy() / 1.05, np.array(list(rewards.values())))
    np.testing.assert_allclose(v.loc[list("12345")].to_numpy(), closed)
    np.testing.assert_allclose(markov_clv(p, rewards, 0.05).to_numpy(), closed)


@pytest.mark.slow
def test_demo_latent_groups_matrix_within_002(tmp_path):
    from segflow.datasets import generate_demo

    ds = generate_demo(tmp_path, customers=5000, months=12, seed=11, formats=("parquet",))
    lg = pq.read_table(ds.truth["latent_groups"])
    assignments = pa.table(
        {
            "scheme": pa.array(["latent"] * lg.num_rows),
            "scheme_version": pa.array(["truth"] * lg.num_rows),
            "snapshot_date": lg["month"],
            "customer_id": lg["customer_id"],
            "segment": lg["group"],
            "segment_rank": pa.nulls(lg.num_rows, pa.int32()),
            "run_id": pa.array(["test"] * lg.num_rows),
        }
    )
    store = Store(":memory:")
    store.append("segment_assignments", assignments)
    pooled = pooled_transition_matrix(store.table("segment_assignments"), scheme="latent")
    truth = pd.read_csv(ds.truth["transition_matrix"], index_col=0)
    estimated = pooled.shares().loc[truth.index, truth.columns]
    assert (estimated - truth).abs().to_numpy().max() < 0.02
    assert pooled.counts()["(gone)"].sum() == 0  # latent groups are recorded every month
    store.close()


#: Values per recency state published in docs/migration.md (30 % margin on the mean repeat
#: buying-quarter spend, 20 % a year discount); half a cent tolerance.
CDNOW_VALUE_INFINITE = {"1": 52.69, "2": 26.41, "3": 23.34, "4": 21.51, "5": 20.41}
CDNOW_VALUE_TWO_YEARS = {"1": 36.86, "2": 10.75, "3": 7.76, "4": 5.96, "5": 4.88}


def test_cdnow_values_in_docs(cdnow):
    table, tx = cdnow
    pooled = pooled_transition_matrix(
        recency_states(table, START, PERIOD_DAYS, N_PERIODS, CAP), scheme="recency"
    )
    chain = MarkovChain().fit(pooled)
    # mean spend of a buying quarter after the acquisition quarter, computed with pandas
    period = (tx["ts"] - pd.Timestamp(START)).dt.days // PERIOD_DAYS
    per = tx.assign(period=period).groupby(["customer_id", "period"])["amount"].sum()
    repeat = per[per.index.get_level_values("period") >= 1]
    assert len(repeat) == 2027 and repeat.mean() == pytest.approx(64.67, abs=0.005)
    rewards = {"1": 0.3 * repeat.mean()}
    d = 1.2**0.25 - 1
    for horizon, published in ((None, CDNOW_VALUE_INFINITE), (7, CDNOW_VALUE_TWO_YEARS)):
        v = chain.value(rewards, d, horizon=horizon)
        for state, value in published.items():
            assert v[state] == pytest.approx(value, abs=0.005), (horizon, state)
    one = pooled.to_pandas().set_index(["from_segment", "to_segment"]).loc[("1", "1")]
    assert (round(one["share_lower"], 3), round(one["share_upper"], 3)) == (0.307, 0.335)


def test_docs_examples_run(cdnow_dir):
    """Every python block of docs/migration.md runs, in order, in one namespace."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "migration.md").read_text(
        encoding="utf-8"
    )
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/migration.md", "exec"), namespace)  # noqa: S102
    tm = namespace["tm"]
    assert tm.summary()["up"] == 1 and tm.summary()["new"] == 1
    assert int(namespace["pooled"].counts().loc["1", "2"]) == 2774
    fc, every = namespace["fc"], namespace["every"]  # the segment-size forecast's example
    assert (fc.meta["pairs_pooled"], fc.meta["first_snapshot"], every.meta["pairs_pooled"]) == (4, "1997-07-02", 5)
    assert every.meta["options"] == {"start": "first", "arrivals": "none"}
