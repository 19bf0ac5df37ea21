"""Churn and next-segment labels, the time split, and the absence of leakage."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.models.test_churn_synth import synth_transactions, to_arrow

from segflow.errors import SegflowError
from segflow.models._churn_data import (
    GONE,
    churn_labels,
    churn_training_set,
    complete_snapshots,
    data_end,
    last_day,
    next_segment_labels,
    next_segment_training_set,
    time_split,
)

S = dt.date(2024, 4, 1)


def _tx(rows: list[tuple[str, str, float, bool | None]]) -> pa.Table:
    return pa.table(
        {
            "transaction_id": [f"t{i}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "ts": pa.array([pd.Timestamp(r[1]).to_pydatetime() for r in rows], pa.timestamp("us")),
            "amount": [r[2] for r in rows],
            "is_return": pa.array([r[3] for r in rows], pa.bool_()),
        }
    )


BOUNDARY = [
    # A: the only later purchase is exactly N = 30 days after s -> outside [s, s+N): churned
    ("A", "2024-03-10 12:00", 20.0, False), ("A", "2024-05-01 00:00:00", 20.0, False),
    # B: one second before the window ends -> purchased
    ("B", "2024-03-10 12:00", 20.0, False), ("B", "2024-04-30 23:59:59", 20.0, False),
    # C: bought one second before s (eligible) and exactly at s (inside the window)
    ("C", "2024-03-31 23:59:59", 20.0, False), ("C", "2024-04-01 00:00:00", 20.0, False),
    # D: first purchase exactly at s -> not eligible at s
    ("D", "2024-04-01 00:00:00", 20.0, False),
    # E: only a return inside the window -> churned
    ("E", "2024-02-01", 20.0, False), ("E", "2024-04-10", -20.0, True),
    # F: only a return before s -> not eligible
    ("F", "2024-02-01", -20.0, True), ("F", "2024-04-10", 20.0, False),
    # G: a zero-amount line inside the window is a purchase occasion (one purchase
    # definition: not a return, amount >= 0) -> not churned
    ("G", "2024-02-01", 20.0, False), ("G", "2024-04-10", 0.0, False),
    # H: is_return unknown (null) counts as a purchase
    ("H", "2024-02-01", 20.0, None), ("H", "2024-04-10", 20.0, None),
]


def test_label_boundaries(memory_store):
    memory_store.append("transactions", _tx(BOUNDARY))
    labels = churn_labels(memory_store.table("transactions"), S, 30).to_pandas()
    got = dict(zip(labels.customer_id, labels.churned, strict=True))
    assert got == {"A": 1, "B": 0, "C": 0, "E": 1, "G": 0, "H": 0}


def _pandas_labels(tx: pd.DataFrame, snapshot: dt.date, horizon: int) -> dict[str, int]:
    """Independent computation: sets of buyers before s and inside [s, s + N days)."""
    s = pd.Timestamp(snapshot)
    e = s + pd.Timedelta(days=horizon)
    buys = tx[(tx.amount >= 0) & ~tx.is_return.fillna(False).astype(bool)]  # $0 counts
    before = set(buys.loc[buys.ts < s, "customer_id"])
    inside = set(buys.loc[(buys.ts >= s) & (buys.ts < e), "customer_id"])
    return {c: int(c not in inside) for c in before}


@pytest.mark.parametrize("horizon", [30, 90])
@pytest.mark.parametrize("snapshot", [dt.date(2023, 7, 1), dt.date(2024, 3, 1)])
def test_labels_match_pandas(memory_store, snapshot, horizon):
    tx = synth_transactions(800, seed=3)
    # put a few purchases exactly on the window boundaries
    tx.loc[tx.index[::97], "ts"] = pd.Timestamp(snapshot) + pd.Timedelta(days=horizon)
    tx.loc[tx.index[5::97], "ts"] = pd.Timestamp(snapshot)
    memory_store.append("transactions", to_arrow(tx))
    labels = churn_labels(memory_store.table("transactions"), snapshot, horizon).to_pandas()
    got = dict(zip(labels.customer_id, labels.churned.astype(int), strict=True))
    expected = _pandas_labels(tx, snapshot, horizon)
    assert got == expected
    assert 0.2 < np.mean(list(got.values())) < 0.95  # both outcomes well represented


def test_complete_snapshots_and_time_split():
    snaps = [dt.date(2024, m, 1) for m in range(1, 13)]
    end = dt.date(2024, 10, 15)
    # s + 90 days <= 2024-10-15  <=>  s <= 2024-07-17
    assert complete_snapshots(snaps, 90, end) == snaps[:7]
    train, test = time_split(snaps, 90, end)
    assert test == dt.date(2024, 7, 1)
    # training label windows end by the test snapshot: s + 90 <= 2024-07-01 <=> s <= 2024-04-02
    assert train == snaps[:4]
    with pytest.raises(SegflowError, match="label window"):
        time_split(snaps[6:], 90, end)
    with pytest.raises(SegflowError, match="training snapshot"):
        time_split(snaps[4:7], 90, end)


def test_data_end_is_day_after_last_transaction(memory_store):
    with pytest.raises(SegflowError, match="no transactions"):
        data_end(memory_store.table("transactions"))
    assert last_day(memory_store.table("transactions")) is None
    memory_store.append("transactions", _tx(BOUNDARY))
    assert data_end(memory_store.table("transactions")) == dt.date(2024, 5, 2)
    # the last line's day, a return included (what `segflow churn score --snapshot` checks)
    memory_store.append("transactions", _tx([("E", "2024-05-03 23:59:59", -5.0, True)]))
    assert last_day(memory_store.table("transactions")) == dt.date(2024, 5, 3)
    assert data_end(memory_store.table("transactions")) == dt.date(2024, 5, 4)


def _features(tables):
    """The real feature library at a snapshot."""
    from segflow.features import customer_features

    return lambda s: customer_features(tables, s)


def _tables(store):
    return {
        n: store.table(n)
        for n in ("customers", "transactions", "events", "campaign_exposures", "survey_responses")
    }


def _light_features(tables):
    """A tiny feature function (orders before s) for tests about labels, not features."""
    tx = tables["transactions"]

    def at(snapshot):
        before = tx.filter(tx.ts < dt.datetime.combine(snapshot, dt.time()))
        return before.group_by("customer_id").aggregate(orders=before.count())

    return at


@pytest.mark.slow  # builds the real feature library's query six times
def test_no_leakage_when_later_transactions_arrive(memory_store):
    """Rows of a snapshot do not change when transactions after its label window arrive,
    and their features do not change when transactions inside the window arrive."""
    tx = synth_transactions(400, seed=4, end=dt.date(2024, 1, 1))
    memory_store.append("transactions", to_arrow(tx))
    tables = _tables(memory_store)
    snaps = [dt.date(2023, 6, 1), dt.date(2023, 8, 1)]
    before = churn_training_set(_features(tables), tables["transactions"], snaps, 60)

    later = synth_transactions(400, seed=5, start=dt.date(2023, 10, 1), end=dt.date(2024, 6, 1))
    later["transaction_id"] = "x" + later["transaction_id"]
    memory_store.append("transactions", to_arrow(later))  # all after 2023-08-01 + 60 days
    after = churn_training_set(_features(tables), tables["transactions"], snaps, 60)
    pd.testing.assert_frame_equal(before, after)

    inside = later.copy()
    inside["transaction_id"] = "y" + inside["transaction_id"]
    inside["ts"] = pd.Timestamp("2023-08-15") + (inside["ts"] - inside["ts"].min()) / 50
    memory_store.append("transactions", to_arrow(inside))  # inside the window of 2023-08-01
    moved = churn_training_set(_features(tables), tables["transactions"], snaps, 60)
    features = [c for c in before.columns if c != "churned"]
    pd.testing.assert_frame_equal(before[features], moved[features])
    assert (moved.churned <= before.churned).all() and (moved.churned < before.churned).any()


def _assignments(memory_store, rows):
    table = pa.table(
        {
            "scheme": ["rfm"] * len(rows),
            "scheme_version": ["1"] * len(rows),
            "snapshot_date": pa.array([r[0] for r in rows], pa.date32()),
            "customer_id": [r[1] for r in rows],
            "segment": [r[2] for r in rows],
            "segment_rank": pa.array([1] * len(rows), pa.int32()),
            "run_id": ["r"] * len(rows),
        }
    )
    memory_store.append("segment_assignments", table)
    return memory_store.table("segment_assignments")


def test_next_segment_labels(memory_store):
    d1, d2, d3 = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
    rows = [
        (d1, "a", "gold"), (d1, "b", "silver"), (d1, "c", "silver"),
        (d2, "a", "silver"), (d2, "b", "silver"), (d2, "d", "gold"),  # c gone, d new
        (d3, "a", "gold"),
    ]
    a = _assignments(memory_store, rows)
    got = next_segment_labels(a, "rfm", d1, d2).to_pandas().sort_values("customer_id")
    assert got.values.tolist() == [
        ["a", "gold", "silver"], ["b", "silver", "silver"], ["c", "silver", GONE]
    ]
    tables = _tables(memory_store)
    memory_store.append("transactions", _tx([(c, "2023-12-01", 5.0, False) for c in "abcd"]))
    frame = next_segment_training_set(_light_features(tables), a, "rfm")
    pairs = frame[["snapshot_date", "next_snapshot", "customer_id", "segment", "next_segment"]]
    pairs = pairs.assign(snapshot_date=pairs.snapshot_date.map(lambda v: pd.Timestamp(v).date()),
                         next_snapshot=pairs.next_snapshot.map(lambda v: pd.Timestamp(v).date()))
    assert pairs.values.tolist() == [
        [d1, d2, "a", "gold", "silver"], [d1, d2, "b", "silver", "silver"],
        [d1, d2, "c", "silver", GONE],
        [d2, d3, "a", "silver", "gold"], [d2, d3, "b", "silver", GONE],
        [d2, d3, "d", "gold", GONE],
    ]


def test_stray_future_rows_warn_and_data_end_fixes_it(memory_store):
    from segflow.models._churn import ChurnModel
    from segflow.models._churn_train import train_churn

    tx = synth_transactions(600, seed=6, end=dt.date(2024, 1, 1))
    stray = tx.iloc[:3].assign(transaction_id=["s1", "s2", "s3"],
                               ts=pd.to_datetime(["2024-05-02", "2024-08-03", "2024-11-04"]))
    memory_store.append("transactions", to_arrow(pd.concat([tx, stray])))
    tables = _tables(memory_store)
    snaps = [dt.date(2023, m, 1) for m in (4, 7, 10)] + [dt.date(2024, m, 1) for m in (1, 4, 7)]
    model = ChurnModel(n_threads=1, max_iter=20, random_state=0)
    with pytest.warns(UserWarning, match="probably end before 2024-11-05"):
        fooled = train_churn(_light_features(tables), tables["transactions"], snaps,
                             horizon_days=90, model=model)
    assert fooled.test_snapshot == dt.date(2024, 7, 1)
    assert fooled.evaluation.base_rate > 0.99  # everyone "churned" in a window without data
    right = train_churn(_light_features(tables), tables["transactions"], snaps,
                        horizon_days=90, model=model, end=dt.date(2024, 1, 1))
    assert right.test_snapshot == dt.date(2023, 10, 1)
    assert right.train_snapshots == [dt.date(2023, 4, 1), dt.date(2023, 7, 1)]


def test_a_feature_without_values_before_the_test_snapshot_is_left_out(memory_store):
    """A feature that starts later (a shop's first campaign in the test snapshot) has no value
    in any training row: `churn train` stopped ("missing for every row"); it is left out of
    both models with a warning naming it, and the rest trains as without it."""
    from segflow.models._churn import ChurnModel
    from segflow.models._churn_train import train_churn

    tx = synth_transactions(600, seed=6, end=dt.date(2024, 1, 1))
    memory_store.append("transactions", to_arrow(tx))
    tables = _tables(memory_store)
    snaps = [dt.date(2023, m, 1) for m in (4, 7, 10)]
    light = _light_features(tables)

    def with_late(snapshot):
        t = light(snapshot)
        late = t.orders.cast("float64") if snapshot >= dt.date(2023, 10, 1) else ibis.null("float64")
        return t.mutate(campaign_opens=late)

    model = ChurnModel(n_threads=1, max_iter=20, random_state=0)
    with pytest.warns(UserWarning, match=r"left out 1 feature\(s\) without a value in any "
                      r"training snapshot \(data that starts later\): campaign_opens"):
        late = train_churn(with_late, tables["transactions"], snaps, horizon_days=90, model=model,
                           end=dt.date(2024, 1, 1))
    plain = train_churn(light, tables["transactions"], snaps, horizon_days=90, model=model,
                        end=dt.date(2024, 1, 1))
    assert late.features == plain.features == ["orders"]
    assert late.test_snapshot == dt.date(2023, 10, 1)
    assert late.evaluation.auc == plain.evaluation.auc
