"""NextSegmentModel on planted migration: beats the stay and Markov baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.models.test_churn_synth import LADDER, planted_migration, sigmoid

from segflow.errors import InputError, SegflowError
from segflow.models._next_segment import (
    NextSegmentModel,
    evaluate_next_segment,
    markov_matrix,
    markov_proba,
    multiclass_log_loss,
)


@pytest.fixture(scope="module")
def fitted():
    frame = planted_migration(16_000, seed=7)
    test = frame.snapshot == frame.snapshot.max()
    tr, te = frame[~test], frame[test]
    X = ["segment", "engagement"]
    model = NextSegmentModel(n_threads=1, random_state=0).fit(
        tr[X], tr.next_segment, groups=tr.snapshot
    )
    markov = markov_matrix(tr.segment, tr.next_segment)
    ev = evaluate_next_segment(model, te[X], te.next_segment, te.segment, markov)
    return model, ev, te


def _true_proba(te: pd.DataFrame) -> np.ndarray:
    """The planted probabilities over LADDER (moves clamped at the ends)."""
    rung = te.segment.map({s: i for i, s in enumerate(LADDER)}).to_numpy()
    e = te.engagement.to_numpy()
    up, down = sigmoid(2 * e - 2), sigmoid(-2 * e - 2)
    out = np.zeros((len(te), len(LADDER)))
    rows = np.arange(len(te))
    np.add.at(out, (rows, np.minimum(rung + 1, 3)), up)
    np.add.at(out, (rows, np.maximum(rung - 1, 0)), down)
    np.add.at(out, (rows, rung), 1 - up - down)
    return out


def test_beats_stay_and_markov(fitted):
    model, ev, te = fitted
    assert list(model.classes_) == sorted(LADDER)
    assert ev.accuracy > ev.stay_accuracy + 0.02
    assert ev.accuracy >= ev.markov_accuracy
    assert ev.log_loss < ev.markov_log_loss - 0.05
    # close to the best achievable (the planted probabilities)
    true = _true_proba(te)
    order = [LADDER.index(c) for c in model.classes_]
    oracle_ll = multiclass_log_loss(te.next_segment, true[:, order], list(model.classes_))
    assert ev.log_loss == pytest.approx(oracle_ll, abs=0.05)
    oracle_acc = np.mean(np.asarray(LADDER)[true.argmax(axis=1)] == te.next_segment.to_numpy())
    assert ev.accuracy == pytest.approx(oracle_acc, abs=0.02)


def test_markov_matrix_against_counts():
    cur = ["a", "a", "a", "b", "b", "c"]
    nxt = ["a", "b", "b", "b", "(gone)", "a"]
    m = markov_matrix(cur, nxt)
    assert m.loc["a", "b"] == pytest.approx(2 / 3) and m.loc["b", "(gone)"] == pytest.approx(0.5)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    classes = ["(gone)", "a", "b", "z"]
    p = markov_proba(m, ["a", "unknown"], classes)
    np.testing.assert_allclose(p[0], [0, 1 / 3, 2 / 3, 0])
    np.testing.assert_allclose(p[1], m.reindex(columns=classes, fill_value=0).mean(axis=0))
    # log-loss: -mean log p(observed), zero probability clipped at 1e-15
    ll = multiclass_log_loss(["b", "z"], p, classes)
    assert ll == pytest.approx(-(np.log(2 / 3) + np.log(1e-15)) / 2)


def test_stay_accuracy_and_by_segment(fitted):
    _, ev, te = fitted
    assert ev.stay_accuracy == pytest.approx(np.mean(te.segment == te.next_segment))
    table = ev.to_pandas()
    assert table.customers.sum() == len(te)
    assert set(table.segment) == set(LADDER)
    assert ev.figure().data[0].type == "bar"
    assert ev.to_dict()["metrics"]["n"] == len(te)


def test_single_class_refused():
    X = pd.DataFrame({"segment": ["a"] * 50, "x": np.arange(50.0)})
    with pytest.raises(SegflowError, match="same next segment"):
        NextSegmentModel(n_threads=1).fit(X, ["a"] * 50)
    labels = ["a", "b"] * 23 + [None, "a", np.nan, "b"]  # became segments 'None' and 'nan'
    with pytest.raises(InputError) as err:
        NextSegmentModel(n_threads=1).fit(X, labels)
    assert str(err.value) == ("next-segment labels y: 2 of 50 are missing (the first at position 47); "
                              "a customer who left has the segment '(gone)'")


def test_too_few_rows_to_calibrate_are_one_line():
    """A small training set reached scikit-learn's splitters: 'The test_size = 3 should be
    greater or equal to the number of classes = 6' and 'n_splits=5 cannot be greater than the
    number of members in each class'."""
    six = pd.DataFrame({"a": np.arange(12.0), "segment": list("ABCDEF") * 2})
    with pytest.raises(SegflowError, match="^12 rows are too few to set 25% aside for calibration"):
        NextSegmentModel(random_state=0).fit(six, list("ABCDEF") * 2)
    # 30 rows, 3 segments: the calibration fold holds 8 rows, at most 4 of a segment (< 5 folds)
    rng = np.random.default_rng(0)
    thirty = pd.DataFrame({"a": rng.normal(size=30), "segment": list("ABC") * 10})
    with pytest.raises(SegflowError, match=r"^the calibration fold \(8 rows\) has fewer than 5 rows"):
        NextSegmentModel(random_state=0).fit(thirty, list("ABC") * 10)


def test_train_next_segment_from_store(memory_store):
    """Stored assignments of four snapshots; features from a table keyed by snapshot."""
    import datetime as dt

    import pyarrow as pa

    from segflow.models._churn_next import (
        score_next_segment,
        train_next_segment,
        write_next_segment_scores,
    )

    rng = np.random.default_rng(3)
    n, dates = 1500, [dt.date(2024, m, 1) for m in (1, 2, 3, 4)]
    ids = np.array([f"c{i}" for i in range(n)])
    rung = rng.integers(0, 4, n)
    rows, feats = [], []
    for k, day in enumerate(dates):
        e = rng.normal(size=n)
        rows.append(pd.DataFrame({"snapshot_date": day, "customer_id": ids,
                                  "segment": np.asarray(LADDER)[rung]}))
        feats.append(pd.DataFrame({"snapshot_date": day, "customer_id": ids, "engagement": e}))
        if k < len(dates) - 1:
            u = rng.random(n)
            up, down = sigmoid(2 * e - 2), sigmoid(-2 * e - 2)
            rung = np.clip(rung + np.where(u < up, 1, np.where(u < up + down, -1, 0)), 0, 3)
    a = pd.concat(rows)
    memory_store.append("segment_assignments", pa.table({
        "scheme": ["ladder"] * len(a), "scheme_version": ["1"] * len(a),
        "snapshot_date": pa.array(a.snapshot_date.tolist(), pa.date32()),
        "customer_id": a.customer_id.tolist(), "segment": a.segment.tolist(),
        "segment_rank": pa.array([1] * len(a), pa.int32()), "run_id": ["r"] * len(a),
    }))
    f = pd.concat(feats)
    memory_store.replace("fx_features", pa.table({
        "snapshot_date": pa.array(f.snapshot_date.tolist(), pa.date32()),
        "customer_id": f.customer_id.tolist(), "engagement": f.engagement.to_numpy(),
    }))
    table = memory_store.table("fx_features")

    def features_at(day):
        return table.filter(table.snapshot_date == day).drop("snapshot_date")

    assignments = memory_store.table("segment_assignments")
    result = train_next_segment(features_at, assignments, "ladder",
                                model=NextSegmentModel(n_threads=1, random_state=0))
    assert result.test_snapshot == dates[2] and result.train_snapshots == dates[:2]
    assert result.features == ["engagement", "segment"]
    ev = result.evaluation
    assert ev.n == n
    assert ev.accuracy > ev.stay_accuracy + 0.02 and ev.log_loss < ev.markov_log_loss
    assert result.summary()["metrics"]["n"] == n

    # score the latest snapshot (next segment unknown) and write the probabilities
    scores = score_next_segment(result.model, features_at(dates[3]), assignments, "ladder",
                                dates[3])
    frame = scores.to_pandas()
    assert len(frame) == n and set(frame.segment) <= set(LADDER)
    p = frame[[f"p_next:{c}" for c in scores.classes]].to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    flows = scores.expected_flows()
    np.testing.assert_allclose(flows.sum(axis=1), frame.segment.value_counts().sort_index())
    # high engagement moves up: platinum more likely from gold when engagement is high
    gold = frame.segment == "gold"
    eng = f[f.snapshot_date == dates[3]].set_index("customer_id").engagement
    hi = eng.reindex(frame.customer_id).to_numpy() > 1
    assert frame.loc[gold & hi, "p_next:platinum"].mean() > frame.loc[gold & ~hi, "p_next:platinum"].mean() + 0.2
    written = write_next_segment_scores(memory_store, scores, "run1")
    assert written == n * len(scores.classes)
    assert write_next_segment_scores(memory_store, scores, "run2") == written  # replaces
    stored = memory_store.sql(
        "SELECT customer_id, score, value FROM customer_scores WHERE model = 'next_segment:ladder'"
    ).to_pandas()
    assert len(stored) == written
    wide = stored.pivot(index="customer_id", columns="score", values="value")
    expected = frame.set_index("customer_id")[wide.columns]
    np.testing.assert_allclose(wide.sort_index().to_numpy(), expected.sort_index().to_numpy())
