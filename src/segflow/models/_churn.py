"""Supervised churn model: calibrated gradient boosting, its evaluation and risk bands.

The churn label is "no purchase in the next N days after the snapshot" (see
:mod:`segflow.models._churn_data`). The classifier is scikit-learn's
HistGradientBoostingClassifier with calibrated probabilities (Platt 1999 sigmoid by default,
or isotonic regression, Zadrozny & Elkan 2002), fitted on a time-held-out calibration fold.
Evaluation follows the usual marketing read-out: ROC AUC, the Brier score, lift by decile of
predicted risk, and the calibration curve (observed churn rate against mean predicted
probability per decile).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.utils.validation import check_is_fitted

from segflow._result import TableResult
from segflow.errors import InputError, SegflowError
from segflow.models._churn_base import BoostedCalibratedClassifier

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Risk bands, lowest first; stored in ``customer_scores`` as their index (0, 1, 2).
RISK_BANDS = ("low", "medium", "high")


class ChurnModel(ClassifierMixin, BoostedCalibratedClassifier):
    """Probability that a customer makes no purchase in the next N days.

    Parameters
    ----------
    calibration : {"sigmoid", "isotonic"}, default="sigmoid"
        How probabilities are calibrated on the held-out fold. Sigmoid (Platt) keeps the
        booster's ranking, so AUC and lift are unchanged by calibration, and needs few rows;
        isotonic is more flexible but makes ties and wants thousands of calibration rows.
    calibration_fraction : float, default=0.25
        Share of rows held out for calibration when ``groups`` give a single snapshot (or
        none); with several snapshots the latest one is the calibration fold.
    band_quantiles : tuple of two floats, default=(0.5, 0.8)
        Risk-band cut points as quantiles of the calibrated probability on the calibration
        fold: the riskiest 20 % of that fold are "high", the next 30 % "medium", the rest
        "low". The resulting *probabilities* are fixed at fit time (``band_thresholds_``), so
        band shares move when risk moves.
    band_thresholds : tuple of two floats, optional
        Explicit probability cut points (medium, high); overrides ``band_quantiles``.
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
        Seed for the booster's early-stopping split and a random calibration split.

    Attributes
    ----------
    booster_ : HistGradientBoostingClassifier
        Fitted on the earlier snapshots.
    calibrated_ : CalibratedClassifierCV
        The calibrated model (booster frozen) fitted on the calibration fold.
    classes_ : ndarray of shape (2,)
        ``[0, 1]`` (1 = churned).
    band_thresholds_ : ndarray of shape (2,)
        Probability cut points: ``p >= band_thresholds_[1]`` is "high",
        ``p >= band_thresholds_[0]`` "medium", otherwise "low".
    calibration_split_ : {"time", "random"}
    feature_names_in_, n_features_in_, categories_
        The feature columns, their number, and the levels of each categorical feature.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"recency_days": rng.exponential(60, 2000),
    ...                   "frequency": rng.poisson(3, 2000)})
    >>> p = 1 / (1 + np.exp(-(X.recency_days / 30 - X.frequency / 2)))
    >>> y = (rng.random(2000) < p).astype(int)
    >>> model = ChurnModel(random_state=0).fit(X, y)
    >>> model.predict_proba(X).shape
    (2000, 2)
    """

    def __init__(
        self,
        *,
        calibration: str = "sigmoid",
        calibration_fraction: float = 0.25,
        band_quantiles: tuple[float, float] = (0.5, 0.8),
        band_thresholds: tuple[float, float] | None = None,
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
        self.band_quantiles = band_quantiles
        self.band_thresholds = band_thresholds
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: Any, y: Any, *, groups: Sequence[Any] | None = None) -> ChurnModel:
        """Fit the booster on earlier snapshots and the calibrator on the latest.

        Parameters
        ----------
        X : DataFrame of shape (n_rows, n_features)
            Numeric, boolean and text (categorical) features; one row per customer and
            snapshot. Identifier and date columns must be removed.
        y : array-like of shape (n_rows,)
            1 = churned (no purchase within the horizon), 0 = purchased.
        groups : array-like of shape (n_rows,), optional
            The snapshot date of each row. The rows of the latest date form the calibration
            fold; without groups a random ``calibration_fraction`` is used.

        Returns
        -------
        self
        """
        y = np.asarray(y)
        if not np.isin(y, (0, 1)).all():
            raise InputError("churn labels y must be 0 (purchased) or 1 (churned)")
        y = y.astype(int)
        X_cal, _ = self._fit_calibrated(X, y, groups)
        if self.band_thresholds is not None:
            lo, hi = (float(v) for v in self.band_thresholds)
        else:
            q_lo, q_hi = (float(v) for v in self.band_quantiles)
            if not 0 < q_lo < q_hi < 1:
                raise SegflowError(f"band_quantiles must satisfy 0 < q1 < q2 < 1, got {self.band_quantiles}")
            with self._threads():
                p_cal = self.calibrated_.predict_proba(X_cal)[:, 1]
            lo, hi = (float(v) for v in np.quantile(p_cal, [q_lo, q_hi]))
        if not 0 <= lo <= hi <= 1:
            raise SegflowError(f"risk band thresholds must satisfy 0 <= medium <= high <= 1, got {(lo, hi)}")
        self.band_thresholds_ = np.array([lo, hi])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n_rows, 2): column 1 is P(churn)."""
        check_is_fitted(self)
        Xt = self._transform(X)
        with self._threads():
            return self.calibrated_.predict_proba(Xt)

    def predict(self, X: Any) -> np.ndarray:
        """1 where P(churn) >= 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def risk_band(self, X: Any) -> np.ndarray:
        """The risk band ("low", "medium", "high") of each row."""
        check_is_fitted(self)
        return band_labels(self.predict_proba(X)[:, 1], self.band_thresholds_)


def band_codes(p: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Risk band index per probability: 0 low, 1 medium (``p >= t1``), 2 high (``p >= t2``)."""
    lo, hi = thresholds
    p = np.asarray(p, dtype=float)
    return (p >= lo).astype(int) + (p >= hi).astype(int)


def band_labels(p: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Risk band name per probability (see :func:`band_codes`)."""
    return np.asarray(RISK_BANDS, dtype=object)[band_codes(p, thresholds)]


# -- evaluation ---------------------------------------------------------------------------
def decile_table(y_true: Any, p: Any, n_bins: int = 10) -> pd.DataFrame:
    """Lift and calibration by bin of predicted risk (bin 1 = highest predicted churn).

    Rows are ranked by predicted probability, highest first; ties keep their input order.
    Bin ``k`` holds ranks ``[floor((k-1) n / B), floor(k n / B))``.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p, dtype=float)
    n = len(y)
    order = np.lexsort((np.arange(n), -p))
    ranks = np.empty(n, dtype=int)
    ranks[order] = np.arange(n)
    bins = ranks * n_bins // n
    count = np.bincount(bins, minlength=n_bins).astype(float)
    churners = np.bincount(bins, weights=y, minlength=n_bins)
    p_sum = np.bincount(bins, weights=p, minlength=n_bins)
    base = y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = churners / count
        cum_n, cum_c = np.cumsum(count), np.cumsum(churners)
        table = pd.DataFrame(
            {
                "decile": np.arange(1, n_bins + 1),
                "customers": count.astype(int),
                "churners": churners.astype(int),
                "mean_predicted": p_sum / count,
                "churn_rate": rate,
                "lift": rate / base if base > 0 else np.nan,
                "cumulative_lift": (cum_c / cum_n) / base if base > 0 else np.nan,
                "cumulative_capture": cum_c / churners.sum() if churners.sum() > 0 else np.nan,
            }
        )
    return table[table.customers > 0].reset_index(drop=True)


class ChurnEvaluation(TableResult):
    """Hold-out metrics of a churn model.

    Attributes
    ----------
    auc : float
        ROC AUC of the predicted probabilities.
    brier : float
        Mean squared error of the probabilities (lower is better).
    log_loss : float
        Mean negative log-likelihood (natural log; probabilities clipped at 1e-15).
    base_rate : float
        Observed churn rate of the hold-out rows.
    ece : float
        Expected calibration error: customer-weighted mean of |observed rate - mean
        predicted| over the deciles of predicted risk.
    lift_at_10, lift_at_20 : float
        Churn rate among the top 10 % / 20 % predicted risk, divided by the base rate.
    deciles : DataFrame
        See :func:`decile_table`; ``to_pandas()`` returns it.
    """

    def __init__(self, y_true: Any, p: Any, *, n_bins: int = 10, label: str = "hold-out") -> None:
        y = np.asarray(y_true, dtype=int)
        p = np.asarray(p, dtype=float)
        if len(y) != len(p) or len(y) == 0:
            raise SegflowError(f"need equal, non-zero numbers of labels and predictions ({len(y)}, {len(p)})")
        self.label = label
        self.n = len(y)
        self.base_rate = float(y.mean())
        self.auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
        self.brier = float(brier_score_loss(y, p))
        pc = np.clip(p, 1e-15, 1 - 1e-15)
        self.log_loss = float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc)))
        self.deciles = decile_table(y, p, n_bins)
        d = self.deciles
        self.ece = float(np.sum(d.customers * (d.churn_rate - d.mean_predicted).abs()) / self.n)
        self.lift_at_10 = _top_lift(y, p, 0.1)
        self.lift_at_20 = _top_lift(y, p, 0.2)

    def metrics(self) -> dict[str, float]:
        return {
            "n": self.n,
            "base_rate": self.base_rate,
            "auc": self.auc,
            "brier": self.brier,
            "log_loss": self.log_loss,
            "ece": self.ece,
            "lift_at_10": self.lift_at_10,
            "lift_at_20": self.lift_at_20,
        }

    def to_pandas(self) -> pd.DataFrame:
        return self.deciles.copy()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["metrics"] = json.loads(json.dumps(self.metrics(), allow_nan=True).replace("NaN", "null"))
        return out

    def figure(self) -> go.Figure:
        """Calibration plot: observed churn rate vs mean predicted probability per decile."""
        import plotly.graph_objects as go

        d = self.deciles
        fig = go.Figure()
        fig.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                       line={"dash": "dash", "color": "grey"})
        )
        fig.add_trace(
            go.Scatter(
                x=d.mean_predicted, y=d.churn_rate, mode="lines+markers", name="model",
                text=[f"decile {k}: {n} customers, lift {lift:.2f}"
                      for k, n, lift in zip(d.decile, d.customers, d.lift, strict=True)],
            )
        )
        fig.update_layout(
            title=f"Churn calibration ({self.label}): AUC {self.auc:.3f}, Brier {self.brier:.3f}",
            xaxis_title="mean predicted churn probability",
            yaxis_title="observed churn rate",
            xaxis_range=[0, 1], yaxis_range=[0, 1],
        )
        return fig

    def lift_figure(self) -> go.Figure:
        """Lift by decile of predicted churn risk (1 = riskiest)."""
        import plotly.graph_objects as go

        d = self.deciles
        fig = go.Figure(go.Bar(x=d.decile, y=d.lift, name="lift"))
        fig.add_hline(y=1.0, line_dash="dash", line_color="grey")
        fig.update_layout(
            title=f"Churn lift by decile ({self.label})",
            xaxis_title="decile of predicted risk (1 = highest)",
            yaxis_title="churn rate / base rate",
        )
        return fig

    def __repr__(self) -> str:
        return (
            f"ChurnEvaluation(n={self.n}, base_rate={self.base_rate:.3f}, auc={self.auc:.3f}, "
            f"brier={self.brier:.4f}, lift_at_10={self.lift_at_10:.2f})"
        )


def _top_lift(y: np.ndarray, p: np.ndarray, share: float) -> float:
    n = len(y)
    k = max(1, int(np.floor(share * n)))
    order = np.lexsort((np.arange(n), -p))
    base = y.mean()
    return float(y[order[:k]].mean() / base) if base > 0 else float("nan")


def evaluate_churn(y_true: Any, p: Any, *, n_bins: int = 10, label: str = "hold-out") -> ChurnEvaluation:
    """AUC, Brier score, log-loss, lift by decile and calibration of churn probabilities.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 = churned.
    p : array-like of shape (n,)
        Predicted churn probabilities.
    n_bins : int, default=10
        Number of risk bins (deciles).
    label : str
        Shown in titles.

    Returns
    -------
    ChurnEvaluation
    """
    return ChurnEvaluation(y_true, p, n_bins=n_bins, label=label)
