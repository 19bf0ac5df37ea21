"""Next-segment model: which segment of a scheme will a customer be in at the next snapshot?

A multi-class HistGradientBoostingClassifier on the customer's features at the snapshot plus
their current segment, with probabilities calibrated on a time-held-out fold (as
:class:`~segflow.models._churn.ChurnModel`). Its read-out compares it with two baselines a
migration analyst would otherwise use:

* **stay**: every customer stays in their current segment (accuracy only: a point prediction
  has no useful log-loss);
* **Markov**: the pooled first-order transition matrix estimated on the training snapshot
  pairs, ``P(next = j | current = i) = n_ij / n_i``; the prediction is the row of the
  customer's current segment (the average row for a segment unseen in training).

Log-losses use natural logs with probabilities clipped at 1e-15, so a zero-probability
outcome costs about 34.5 nats instead of infinity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from segflow._result import TableResult
from segflow.errors import InputError, SegflowError
from segflow.models._churn_base import BoostedCalibratedClassifier

if TYPE_CHECKING:
    import plotly.graph_objects as go

EPS = 1e-15


class NextSegmentModel(ClassifierMixin, BoostedCalibratedClassifier):
    """Probabilities of each next-period segment (including ``"(gone)"``).

    Parameters
    ----------
    calibration : {"sigmoid", "isotonic"}, default="sigmoid"
        One-vs-rest calibration on the held-out fold, renormalised to sum to one.
    calibration_fraction : float, default=0.25
        Held-out share when ``groups`` give a single snapshot (or none).
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization, early_stopping
        Passed to :class:`~sklearn.ensemble.HistGradientBoostingClassifier`. Early stopping
        is on by default (on a random 10 % of the fitting rows), not only above 10 000
        rows as scikit-learn's ``"auto"``: unstopped boosting overfits small fits.
        The tree defaults (``learning_rate=0.05``, ``max_iter=500``, ``max_leaf_nodes=15``,
        ``min_samples_leaf=50``) are more conservative than scikit-learn's: customer
        data are noisy and stacked snapshots repeat customers (see ``docs/churn.md``).
    n_threads : int, optional
        OpenMP threads for fitting and prediction; default all cores. On a machine shared
        with other busy processes, 1 can be many times faster (measured: 0.7 s against
        11.6 s for 16 000 rows x 35 features at a load average of 13 on 2 cores).
    random_state : int, optional

    Attributes
    ----------
    booster_, calibrated_, classes_, calibration_split_, feature_names_in_, categories_
        As for :class:`~segflow.models._churn.ChurnModel`; ``classes_`` are the segment
        names seen as next segments in training.

    Notes
    -----
    Put the current segment among the features (a text column): it is usually the strongest
    predictor of the next one.
    """

    def __init__(
        self,
        *,
        calibration: str = "sigmoid",
        calibration_fraction: float = 0.25,
        learning_rate: float = 0.05,
        max_iter: int = 500,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 50,
        l2_regularization: float = 0.0,
        early_stopping: str | bool = True,
        n_threads: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: Any, y: Any, *, groups: Sequence[Any] | None = None) -> NextSegmentModel:
        """Fit the booster on earlier snapshots and the calibrator on the latest.

        Parameters
        ----------
        X : DataFrame of shape (n_rows, n_features)
            Features at the snapshot, including the current segment.
        y : array-like of shape (n_rows,)
            The segment at the next snapshot (text).
        groups : array-like of shape (n_rows,), optional
            Snapshot date per row; the latest date is the calibration fold.

        Returns
        -------
        self
        """
        missing = pd.isna(pd.Series(np.asarray(y, dtype=object))).to_numpy()
        if missing.any():  # (became a segment "nan" or "None" through astype(str))
            first = int(np.flatnonzero(missing)[0])
            raise InputError(f"next-segment labels y: {int(missing.sum()):,} of {len(missing):,} are "
                             f"missing (the first at position {first + 1}); a customer who left has "
                             "the segment '(gone)'")
        y = np.asarray(y).astype(str)
        if len(np.unique(y)) < 2:
            raise SegflowError("every customer has the same next segment; nothing to learn")
        self._fit_calibrated(X, y, groups)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n_rows, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self)
        Xt = self._transform(X)
        with self._threads():
            return self.calibrated_.predict_proba(Xt)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable next segment of each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def markov_matrix(current: Any, following: Any) -> pd.DataFrame:
    """Pooled transition probabilities ``P(next | current)`` from labelled pairs.

    Returns
    -------
    DataFrame
        Rows: current segments; columns: next segments; each row sums to one.
    """
    counts = pd.crosstab(pd.Series(np.asarray(current, dtype=str), name="segment"),
                         pd.Series(np.asarray(following, dtype=str), name="next_segment"))
    return counts.div(counts.sum(axis=1), axis=0)


def markov_proba(matrix: pd.DataFrame, current: Any, classes: Sequence[str]) -> np.ndarray:
    """The Markov prediction for each row, as probabilities over ``classes``.

    Segments absent from the matrix rows get the average of its rows.
    """
    m = matrix.reindex(columns=list(classes), fill_value=0.0).fillna(0.0)
    marginal = m.mean(axis=0).to_numpy()
    index = {seg: i for i, seg in enumerate(m.index)}
    rows = np.vstack([m.to_numpy(), marginal[None, :]])
    pos = np.array([index.get(s, len(m)) for s in np.asarray(current, dtype=str)])
    return rows[pos]


def multiclass_log_loss(y: Any, proba: np.ndarray, classes: Sequence[str]) -> float:
    """Mean of ``-log p(observed class)``, probabilities clipped at 1e-15; classes never
    predicted get probability zero."""
    lookup = {c: i for i, c in enumerate(classes)}
    y = np.asarray(y, dtype=str)
    col = np.array([lookup.get(v, -1) for v in y])
    p = np.where(col >= 0, proba[np.arange(len(y)), np.maximum(col, 0)], 0.0)
    return float(-np.mean(np.log(np.clip(p, EPS, 1.0))))


class NextSegmentEvaluation(TableResult):
    """Hold-out read-out of a next-segment model against the stay and Markov baselines.

    Attributes
    ----------
    n : int
    accuracy, log_loss : float
        Of the model.
    stay_accuracy : float
        Share of customers whose next segment equals their current one.
    markov_accuracy, markov_log_loss : float
        Of the pooled transition-matrix prediction.
    by_segment : DataFrame
        Per current segment: customers, model / stay / Markov accuracy; ``to_pandas()``.
    """

    def __init__(
        self,
        y_true: Any,
        proba: np.ndarray,
        classes: Sequence[str],
        current: Any,
        markov: pd.DataFrame,
        *,
        label: str = "hold-out",
    ) -> None:
        y = np.asarray(y_true, dtype=str)
        cur = np.asarray(current, dtype=str)
        classes = [str(c) for c in classes]
        if proba.shape != (len(y), len(classes)) or len(cur) != len(y):
            raise InputError("labels, current segments and probabilities disagree in size")
        self.label = label
        self.n = len(y)
        pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
        mk = markov_proba(markov, cur, classes)
        mk_pred = np.asarray(classes, dtype=object)[np.argmax(mk, axis=1)]
        self.accuracy = float(np.mean(pred == y))
        self.log_loss = multiclass_log_loss(y, proba, classes)
        self.stay_accuracy = float(np.mean(cur == y))
        self.markov_accuracy = float(np.mean(mk_pred == y))
        self.markov_log_loss = multiclass_log_loss(y, mk, classes)
        frame = pd.DataFrame(
            {"segment": cur, "model": pred == y, "stay": cur == y, "markov": mk_pred == y}
        )
        self.by_segment = (
            frame.groupby("segment", sort=True)
            .agg(customers=("model", "size"), model_accuracy=("model", "mean"),
                 stay_accuracy=("stay", "mean"), markov_accuracy=("markov", "mean"))
            .reset_index()
        )

    def metrics(self) -> dict[str, float]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "log_loss": self.log_loss,
            "stay_accuracy": self.stay_accuracy,
            "markov_accuracy": self.markov_accuracy,
            "markov_log_loss": self.markov_log_loss,
        }

    def to_pandas(self) -> pd.DataFrame:
        return self.by_segment.copy()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["metrics"] = json.loads(json.dumps(self.metrics()).replace("NaN", "null"))
        return out

    def figure(self) -> go.Figure:
        """Accuracy by current segment: model vs stay vs Markov."""
        import plotly.graph_objects as go

        d = self.by_segment
        fig = go.Figure()
        for col, name in (("model_accuracy", "model"), ("stay_accuracy", "stay"),
                          ("markov_accuracy", "Markov")):
            fig.add_trace(go.Bar(x=d.segment, y=d[col], name=name))
        fig.update_layout(
            barmode="group",
            title=f"Next-segment accuracy ({self.label}): model {self.accuracy:.3f}, "
            f"stay {self.stay_accuracy:.3f}, Markov {self.markov_accuracy:.3f}",
            xaxis_title="current segment", yaxis_title="accuracy", yaxis_range=[0, 1],
        )
        return fig

    def __repr__(self) -> str:
        return (
            f"NextSegmentEvaluation(n={self.n}, accuracy={self.accuracy:.3f}, "
            f"stay={self.stay_accuracy:.3f}, markov={self.markov_accuracy:.3f}, "
            f"log_loss={self.log_loss:.3f} vs markov {self.markov_log_loss:.3f})"
        )


def evaluate_next_segment(
    model: NextSegmentModel,
    X: Any,
    y_true: Any,
    current: Any,
    markov: pd.DataFrame,
    *,
    label: str = "hold-out",
) -> NextSegmentEvaluation:
    """Score ``model`` on hold-out rows against the stay and Markov baselines.

    Parameters
    ----------
    model : NextSegmentModel (fitted)
    X : DataFrame
        Hold-out features (as in fit).
    y_true : array-like
        Observed next segments.
    current : array-like
        Current segments of the same rows.
    markov : DataFrame
        :func:`markov_matrix` of the *training* pairs.
    """
    check_is_fitted(model)
    return NextSegmentEvaluation(
        y_true, model.predict_proba(X), list(model.classes_), current, markov, label=label
    )
