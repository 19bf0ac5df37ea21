"""Training, honest evaluation, scoring and persistence of the churn model.

The training set stacks (customer, snapshot) rows over the snapshots whose label window is
complete. Evaluation uses a time-based split (see :func:`segflow.models._churn_data.time_split`):
the model is fitted on snapshots whose label window ends by the test snapshot and evaluated
on the test snapshot. The model kept for scoring is then refitted on every complete snapshot
(its calibration fold is the latest one), so scores use the most recent behaviour.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ibis
import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import sklearn
from sklearn.base import clone

from segflow._dates import as_date
from segflow._result import TableResult
from segflow.errors import SegflowError
from segflow.models._churn import RISK_BANDS, ChurnEvaluation, ChurnModel, band_codes
from segflow.models._churn_data import (
    FeaturesAt,
    churn_training_set,
    complete_snapshots,
    data_end,
    eligible_customers,
    feature_columns,
    observed_in_training,
    time_split,
    window_rates,
)
from segflow.store import Store

#: Score names written to ``customer_scores``.
PROBABILITY_SCORE = "churn_probability"
BAND_SCORE = "churn_risk_band"


def churn_model_name(horizon_days: int) -> str:
    """The ``model`` value of churn scores in ``customer_scores``, e.g. ``churn_90d``."""
    return f"churn_{horizon_days}d"


@dataclasses.dataclass
class ChurnTraining:
    """What :func:`train_churn` produced.

    Attributes
    ----------
    model : ChurnModel
        The model for scoring (refitted on all complete snapshots unless ``refit=False``).
    evaluation : ChurnEvaluation
        Metrics on the test snapshot of a model fitted on the training snapshots only.
    horizon_days : int
    train_snapshots : list of date
    test_snapshot : date
    refit_snapshots : list of date
    data_end : date
        Exclusive end of the data (the day after the last transaction day).
    n_train, n_test : int
        Rows (customer x snapshot) used for fitting and testing.
    features : list of str
    seconds : dict
    """

    model: ChurnModel
    evaluation: ChurnEvaluation
    horizon_days: int
    train_snapshots: list[dt.date]
    test_snapshot: dt.date
    refit_snapshots: list[dt.date]
    data_end: dt.date
    n_train: int
    n_test: int
    features: list[str]
    seconds: dict[str, float]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (metrics, split, thresholds, deciles)."""
        ev = self.evaluation.to_dict()
        return {
            "model": churn_model_name(self.horizon_days),
            "horizon_days": self.horizon_days,
            "data_end": self.data_end,
            "train_snapshots": self.train_snapshots,
            "test_snapshot": self.test_snapshot,
            "refit_snapshots": self.refit_snapshots,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "features": self.features,
            "calibration": self.model.calibration,
            "band_thresholds": [float(v) for v in self.model.band_thresholds_],
            "metrics": ev["metrics"],
            "deciles": ev["data"],
            "seconds": self.seconds,
        }


def train_churn(
    features_at: FeaturesAt,
    transactions: ibis.Table,
    snapshots: Sequence[dt.date],
    *,
    horizon_days: int = 90,
    model: ChurnModel | None = None,
    end: dt.date | None = None,
    max_snapshots: int | None = 12,
    refit: bool = True,
) -> ChurnTraining:
    """Build the stacked training set, evaluate on a time split, and fit the scoring model.

    Parameters
    ----------
    features_at : callable
        ``features_at(snapshot) -> ibis.Table`` of per-customer features using ``ts < snapshot``
        only, e.g. ``lambda s: segflow.features.customer_features(tables, s)``.
    transactions : ibis.Table
        Canonical transactions on the same backend.
    snapshots : sequence of date
        Candidate snapshot dates (e.g. the project's period boundaries).
    horizon_days : int, default=90
        Churn = no purchase in ``[s, s + horizon_days)``.
    model : ChurnModel, optional
        Hyper-parameters to use (cloned); default ``ChurnModel(random_state=0)``.
    end : date, optional
        Exclusive end of the data; default: the day after the last transaction day.
    max_snapshots : int or None, default=12
        Use at most this many of the latest complete snapshots (bounds memory and time).
    refit : bool, default=True
        Refit the scoring model on every used snapshot after evaluation.

    Returns
    -------
    ChurnTraining
    """
    seconds: dict[str, float] = {}
    end = end or data_end(transactions)
    complete = complete_snapshots(snapshots, horizon_days, end)
    if max_snapshots is not None:
        complete = complete[-max_snapshots:]
    train_snaps, test = time_split(complete, horizon_days, end)
    _check_coverage(transactions, train_snaps, test, horizon_days, end)
    start = time.perf_counter()
    frame = churn_training_set(features_at, transactions, complete, horizon_days)
    seconds["training_set"] = time.perf_counter() - start
    cols = feature_columns(frame)
    day = frame["snapshot_date"].map(as_date)
    train_rows = day.isin(train_snaps).to_numpy()
    test_rows = (day == test).to_numpy()
    if not train_rows.any() or not test_rows.any():
        raise SegflowError("no eligible customers in the training or test snapshot")
    cols = observed_in_training(frame, cols, train_rows)
    base = model if model is not None else ChurnModel(random_state=0)

    start = time.perf_counter()
    tr = frame[train_rows]
    evaluated = clone(base).fit(tr[cols], tr["churned"], groups=day[train_rows].to_numpy())
    te = frame[test_rows]
    p = evaluated.predict_proba(te[cols])[:, 1]
    evaluation = ChurnEvaluation(te["churned"].to_numpy(), p, label=f"test snapshot {test}")
    seconds["fit_and_evaluate"] = time.perf_counter() - start

    final, used = evaluated, list(train_snaps)
    if refit:
        start = time.perf_counter()
        final = clone(base).fit(frame[cols], frame["churned"], groups=day.to_numpy())
        used = complete
        seconds["refit"] = time.perf_counter() - start
    return ChurnTraining(
        model=final,
        evaluation=evaluation,
        horizon_days=horizon_days,
        train_snapshots=list(train_snaps),
        test_snapshot=test,
        refit_snapshots=list(used),
        data_end=end,
        n_train=int(train_rows.sum()),
        n_test=int(test_rows.sum()),
        features=cols,
        seconds=seconds,
    )


#: Warn when the test label window holds fewer purchases per day than this share of the
#: median training window.
COVERAGE_RATIO = 0.25


def _check_coverage(
    transactions: ibis.Table,
    train: Sequence[dt.date],
    test: dt.date,
    horizon_days: int,
    end: dt.date,
) -> None:
    rates = window_rates(transactions, [*train, test], horizon_days)
    typical = float(np.median([rates[s] for s in train]))
    if typical > 0 and rates[test] < COVERAGE_RATIO * typical:
        warnings.warn(
            f"the label window of the test snapshot {test} ({horizon_days} days) holds "
            f"{rates[test]:.2f} purchase lines per day against a median of {typical:.2f} in the "
            f"training windows: the data probably end before {end} (stray future-dated rows?). "
            "Churn labels there are not trustworthy; pass the real data end (--data-end).",
            UserWarning,
            stacklevel=3,
        )


# -- scoring --------------------------------------------------------------------------------
def look_ahead_note(meta: dict[str, Any], snapshot: dt.date) -> str | None:
    """A note when a saved churn model (its ``meta``, :func:`load_churn_model`) learned from
    labels that end after ``snapshot``: its latest training snapshot plus the horizon (the
    purchases of ``[s, s + horizon)``). Scores at ``snapshot`` then use data from after
    it (a look-ahead); a model trained with ``end=snapshot`` (``--data-end``) has none.
    ``None`` when the labels end on or before ``snapshot`` (always at the latest snapshot,
    which follows the data end) or the meta does not say."""
    days = meta.get("refit_snapshots") or meta.get("train_snapshots") or []
    horizon = meta.get("horizon_days")
    if not days or horizon is None:
        return None
    last = max(as_date(d) for d in days)
    labels_end = last + dt.timedelta(days=int(horizon))
    if labels_end <= snapshot:
        return None
    return (f"{meta.get('model', 'the churn model')}: trained on labels up to {labels_end} (the "
            f"{horizon} days after its latest training snapshot {last}), after the snapshot "
            f"{snapshot} it scores: these scores use data from after {snapshot} (a "
            f"look-ahead); for scores known at {snapshot}, train with --data-end {snapshot}")


class ChurnScores(TableResult):
    """Per-customer churn probability and risk band at one snapshot.

    ``to_pandas()`` gives ``customer_id``, ``churn_probability``, ``risk_band``;
    ``figure()`` the distribution of probabilities by band.
    """

    def __init__(self, frame: pd.DataFrame, snapshot: dt.date, model: str,
                 thresholds: Sequence[float]) -> None:
        self.frame = frame
        self.snapshot = snapshot
        self.model = model
        self.thresholds = [float(t) for t in thresholds]

    def to_pandas(self) -> pd.DataFrame:
        return self.frame.copy()

    def band_counts(self) -> dict[str, int]:
        counts = self.frame["risk_band"].value_counts()
        return {band: int(counts.get(band, 0)) for band in RISK_BANDS}

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(snapshot=self.snapshot.isoformat(), model=self.model,
                   band_thresholds=self.thresholds, bands=self.band_counts())
        return out

    def figure(self) -> Any:
        import plotly.graph_objects as go

        fig = go.Figure()
        for band in RISK_BANDS:
            values = self.frame.loc[self.frame.risk_band == band, "churn_probability"]
            fig.add_trace(go.Histogram(x=values, name=band, xbins={"start": 0, "end": 1, "size": 0.02}))
        fig.update_layout(barmode="stack", title=f"Churn risk at {self.snapshot} ({self.model})",
                          xaxis_title="churn probability", yaxis_title="customers")
        return fig

    def __repr__(self) -> str:
        return f"ChurnScores(snapshot={self.snapshot}, customers={len(self.frame)}, bands={self.band_counts()})"


def score_churn(
    model: ChurnModel,
    features: ibis.Table,
    transactions: ibis.Table,
    snapshot: dt.date,
    *,
    model_name: str = "churn",
) -> ChurnScores:
    """Churn probability and risk band of every eligible customer at ``snapshot``.

    Parameters
    ----------
    model : ChurnModel (fitted)
    features : ibis.Table
        Features at ``snapshot`` (``customer_id`` plus the model's feature columns).
    transactions : ibis.Table
    snapshot : date
        Only customers with a purchase before it are scored (as in training).
    """
    eligible = eligible_customers(transactions, snapshot)
    frame = features.inner_join(eligible, "customer_id").to_pandas()
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    p = model.predict_proba(frame) if len(frame) else np.empty((0, 2))
    prob = p[:, 1] if len(frame) else np.empty(0)
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str).to_numpy(),
            "churn_probability": prob,
            "risk_band": np.asarray(RISK_BANDS, dtype=object)[band_codes(prob, model.band_thresholds_)],
        }
    )
    return ChurnScores(out, snapshot, model_name, model.band_thresholds_)


def write_churn_scores(store: Store, scores: ChurnScores, run_id: str) -> int:
    """Write churn scores into ``customer_scores`` (replacing the same snapshot and model).

    Two rows per customer: score ``churn_probability`` (value in [0, 1]) and score
    ``churn_risk_band`` (value 0 = low, 1 = medium, 2 = high). Returns rows written.
    """
    frame = scores.frame
    n = len(frame)
    codes = pd.Series(frame["risk_band"]).map({b: i for i, b in enumerate(RISK_BANDS)})
    rows = pa.table(
        {
            "snapshot_date": pa.array([scores.snapshot] * (2 * n), pa.date32()),
            "customer_id": pa.array(list(frame["customer_id"]) * 2, pa.string()),
            "model": pa.array([scores.model] * (2 * n), pa.string()),
            "score": pa.array([PROBABILITY_SCORE] * n + [BAND_SCORE] * n, pa.string()),
            "value": pa.array(
                np.concatenate([frame["churn_probability"].to_numpy(float), codes.to_numpy(float)]),
                pa.float64(),
            ),
            "run_id": pa.array([run_id] * (2 * n), pa.string()),
        }
    )
    with store.transaction() as con:
        con.execute(
            "DELETE FROM customer_scores WHERE snapshot_date = ? AND model = ? AND score IN (?, ?)",
            [scores.snapshot, scores.model, PROBABILITY_SCORE, BAND_SCORE],
        )
        return store.append("customer_scores", rows, con=con)


# -- persistence ----------------------------------------------------------------------------
def save_churn_model(training: ChurnTraining, path: str | Path) -> Path:
    """Save the scoring model with its training summary (joblib, plus a JSON sidecar).

    Only load files you wrote yourself: joblib files are pickles.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = training.summary()
    meta = {"sklearn_version": sklearn.__version__, **summary}
    joblib.dump({"model": training.model, "meta": meta}, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return path


def load_churn_model(path: str | Path) -> tuple[ChurnModel, dict[str, Any]]:
    """Load a model saved by :func:`save_churn_model`; returns (model, training summary)."""
    path = Path(path)
    if not path.exists():
        raise SegflowError(f"no trained churn model at {path}; run `segflow churn train` first")
    try:
        payload = joblib.load(path)
        model, meta = payload["model"], payload.get("meta", {})
    except Exception as exc:  # a truncated, foreign or incompatible file
        raise SegflowError(
            f"cannot read the churn model {path} ({type(exc).__name__}: {exc}); "
            "retrain it with `segflow churn train`"
        ) from exc
    if meta.get("sklearn_version") != sklearn.__version__:
        warnings.warn(
            f"{path} was saved with scikit-learn {meta.get('sklearn_version')}, this is "
            f"{sklearn.__version__}; retrain with `segflow churn train` if scores look wrong",
            UserWarning,
            stacklevel=2,
        )
    return model, meta
