"""Training, honest evaluation and scoring of the next-segment model of a scheme.

Training rows are (customer, snapshot pair) of the scheme's stored assignments: features and
current segment at ``s_k``, label the segment at ``s_(k+1)`` (or ``"(gone)"``). The latest
pair is the test set; the earlier pairs are the training set, so no training label comes
from after the test snapshot. The scoring model is then refitted on every pair and applied
to the latest stored snapshot, whose next segment is still unknown.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import clone

from segflow._dates import as_date
from segflow._result import TableResult
from segflow.errors import SegflowError
from segflow.models._churn_data import (
    FeaturesAt,
    feature_columns,
    next_segment_training_set,
    observed_in_training,
    stored_snapshots,
)
from segflow.models._next_segment import (
    NextSegmentEvaluation,
    NextSegmentModel,
    evaluate_next_segment,
    markov_matrix,
)
from segflow.store import Store

#: Prefix of the per-segment probability scores in ``customer_scores``.
NEXT_SCORE_PREFIX = "p_next:"


def next_segment_model_name(scheme: str) -> str:
    """The ``model`` value of next-segment scores in ``customer_scores``."""
    return f"next_segment:{scheme}"


@dataclasses.dataclass
class NextSegmentTraining:
    """What :func:`train_next_segment` produced.

    Attributes
    ----------
    model : NextSegmentModel
        For scoring: refitted on every pair unless ``refit=False``.
    evaluation : NextSegmentEvaluation
        Of a model fitted on the training pairs only, on the test pair.
    markov : DataFrame
        Pooled transition matrix of the training pairs (the baseline).
    scheme : str
    train_snapshots : list of date
        "From" dates of the training pairs.
    test_snapshot : date
        "From" date of the test pair.
    features : list of str
    """

    model: NextSegmentModel
    evaluation: NextSegmentEvaluation
    markov: pd.DataFrame
    scheme: str
    train_snapshots: list[dt.date]
    test_snapshot: dt.date
    features: list[str]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (metrics vs baselines, split, accuracy by segment)."""
        ev = self.evaluation.to_dict()
        return {
            "model": next_segment_model_name(self.scheme),
            "scheme": self.scheme,
            "train_snapshots": self.train_snapshots,
            "test_snapshot": self.test_snapshot,
            "classes": [str(c) for c in self.model.classes_],
            "features": self.features,
            "metrics": ev["metrics"],
            "by_segment": ev["data"],
        }


def train_next_segment(
    features_at: FeaturesAt,
    assignments: ibis.Table,
    scheme: str,
    *,
    model: NextSegmentModel | None = None,
    snapshots: Sequence[dt.date] | None = None,
    max_snapshots: int | None = 12,
    refit: bool = True,
) -> NextSegmentTraining:
    """Fit the next-segment model on earlier snapshot pairs and evaluate on the latest.

    Parameters
    ----------
    features_at : callable
        ``features_at(snapshot) -> ibis.Table`` (``customer_id`` + features, ``ts < s`` only).
    assignments : ibis.Table
        The store's ``segment_assignments``.
    scheme : str
    model : NextSegmentModel, optional
        Hyper-parameters (cloned); default ``NextSegmentModel(random_state=0)``.
    snapshots : sequence of date, optional
        "From" dates to use; default: every stored snapshot with a later one.
    max_snapshots : int or None, default=12
        Use at most this many of the latest "from" dates.
    refit : bool, default=True
        Refit the scoring model on every pair after evaluation.

    Returns
    -------
    NextSegmentTraining
    """
    if snapshots is None:
        snapshots = stored_snapshots(assignments, scheme)[:-1]
    chosen = sorted(set(snapshots))
    if max_snapshots is not None:
        chosen = chosen[-max_snapshots:]
    frame = next_segment_training_set(features_at, assignments, scheme, chosen)
    day = frame["snapshot_date"].map(as_date)
    test = max(day)
    train_rows = (day < test).to_numpy()
    if not train_rows.any():
        raise SegflowError(
            f"scheme {scheme!r} needs at least three stored snapshots for a next-segment "
            "model (two pairs: one to train on, the latest to test on)"
        )
    cols = observed_in_training(frame, feature_columns(frame), train_rows)  # with the segment (text)
    tr, te = frame[train_rows], frame[~train_rows]
    base = model if model is not None else NextSegmentModel(random_state=0)
    fitted = clone(base).fit(tr[cols], tr["next_segment"], groups=day[train_rows].to_numpy())
    markov = markov_matrix(tr["segment"], tr["next_segment"])
    evaluation = evaluate_next_segment(
        fitted, te[cols], te["next_segment"], te["segment"], markov, label=f"from {test}"
    )
    if refit:
        fitted = clone(base).fit(frame[cols], frame["next_segment"], groups=day.to_numpy())
    return NextSegmentTraining(
        model=fitted, evaluation=evaluation, markov=markov, scheme=scheme,
        train_snapshots=sorted(set(day[train_rows])), test_snapshot=test, features=cols,
    )


class NextSegmentScores(TableResult):
    """Next-segment probabilities of every customer assigned at one snapshot.

    ``to_pandas()``: ``customer_id``, ``segment`` (current), ``predicted_segment``,
    ``probability`` (of the predicted segment) and one ``p_next:<segment>`` column per class.
    ``figure()``: the expected flows (sum of probabilities) from each current segment.
    """

    def __init__(self, frame: pd.DataFrame, snapshot: dt.date, scheme: str,
                 classes: Sequence[str]) -> None:
        self.frame = frame
        self.snapshot = snapshot
        self.scheme = scheme
        self.classes = [str(c) for c in classes]

    def to_pandas(self) -> pd.DataFrame:
        return self.frame.copy()

    def expected_flows(self) -> pd.DataFrame:
        """Expected customers moving from each current segment (rows) to each next (columns)."""
        cols = [NEXT_SCORE_PREFIX + c for c in self.classes]
        flows = self.frame.groupby("segment", sort=True)[cols].sum()
        flows.columns = self.classes
        return flows

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        flows = self.expected_flows()
        out.update(snapshot=self.snapshot.isoformat(), scheme=self.scheme, classes=self.classes,
                   expected_flows={k: {c: float(v) for c, v in row.items()}
                                   for k, row in flows.iterrows()})
        return out

    def figure(self) -> Any:
        import plotly.graph_objects as go

        flows = self.expected_flows()
        fig = go.Figure(go.Heatmap(z=flows.to_numpy(), x=list(flows.columns),
                                   y=list(flows.index), colorscale="Blues"))
        fig.update_layout(title=f"Expected moves after {self.snapshot} ({self.scheme})",
                          xaxis_title="next segment", yaxis_title="current segment")
        return fig

    def __repr__(self) -> str:
        return (f"NextSegmentScores(scheme={self.scheme!r}, snapshot={self.snapshot}, "
                f"customers={len(self.frame)})")


def score_next_segment(
    model: NextSegmentModel,
    features: ibis.Table,
    assignments: ibis.Table,
    scheme: str,
    snapshot: dt.date,
) -> NextSegmentScores:
    """Next-segment probabilities of every customer assigned to ``scheme`` at ``snapshot``.

    Parameters
    ----------
    model : NextSegmentModel (fitted)
    features : ibis.Table
        Features at ``snapshot`` (``customer_id`` plus the model's feature columns).
    assignments : ibis.Table
    scheme : str
    snapshot : date
        A stored snapshot of ``scheme``; its assignments give the current segments.
    """
    a = assignments.filter(assignments.scheme == scheme,
                           assignments.snapshot_date == ibis.literal(snapshot, type="date"))
    current = a.select("customer_id", "segment")
    feats = features.drop(*[c for c in ("segment", "snapshot_date") if c in features.columns])
    frame = feats.inner_join(current, "customer_id").to_pandas()
    if frame.empty:
        raise SegflowError(f"no customers assigned to scheme {scheme!r} at {snapshot}")
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    proba = model.predict_proba(frame)
    classes = [str(c) for c in model.classes_]
    best = np.argmax(proba, axis=1)
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str).to_numpy(),
            "segment": frame["segment"].astype(str).to_numpy(),
            "predicted_segment": np.asarray(classes, dtype=object)[best],
            "probability": proba[np.arange(len(frame)), best],
        }
    )
    for i, c in enumerate(classes):
        out[NEXT_SCORE_PREFIX + c] = proba[:, i]
    return NextSegmentScores(out, snapshot, scheme, classes)


def write_next_segment_scores(store: Store, scores: NextSegmentScores, run_id: str) -> int:
    """Write one ``p_next:<segment>`` row per customer and class into ``customer_scores``
    (``model = 'next_segment:<scheme>'``), replacing the same snapshot and model."""
    model = next_segment_model_name(scores.scheme)
    frame = scores.frame
    n, k = len(frame), len(scores.classes)
    names = [NEXT_SCORE_PREFIX + c for c in scores.classes]
    rows = pa.table(
        {
            "snapshot_date": pa.array([scores.snapshot] * (n * k), pa.date32()),
            "customer_id": pa.array(list(frame["customer_id"]) * k, pa.string()),
            "model": pa.array([model] * (n * k), pa.string()),
            "score": pa.array(np.repeat(names, n).tolist(), pa.string()),
            "value": pa.array(frame[names].to_numpy(float).T.reshape(-1), pa.float64()),
            "run_id": pa.array([run_id] * (n * k), pa.string()),
        }
    )
    with store.transaction() as con:
        con.execute("DELETE FROM customer_scores WHERE snapshot_date = ? AND model = ?",
                    [scores.snapshot, model])
        return store.append("customer_scores", rows, con=con)
