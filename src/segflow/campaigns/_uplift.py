"""Uplift models: each customer's expected lift from treatment, and the Qini curve / AUUC
that say whether targeting by the model beats targeting at random.

Two approaches on scikit-learn estimators (default: histogram gradient boosting):

- **Two-model** ("T-learner"): one model of the outcome on treated customers, one on
  control customers; uplift = prediction(treated model) - prediction(control model).
  Works for 0/1 and continuous outcomes.
- **Class transformation** (Jaskowski & Jaroszewicz 2012): ``Z = 1`` when a treated customer
  responds or a control customer does not; with a 50/50 split ``uplift = 2 P(Z=1|x) - 1``.
  For other splits the arms are re-weighted to equal total weight, which restores the
  identity under randomisation. 0/1 outcomes only.

References
----------
- Radcliffe, N. J. (2007). Using control groups to target on predicted lift: building and
  assessing uplift models. Direct Marketing Analytics Journal 1, 14-21 (the Qini curve).
- Jaskowski, M. & Jaroszewicz, S. (2012). Uplift modeling for clinical trial data. ICML
  workshop on clinical data analysis.
- Gutierrez, P. & Gerardy, J.-Y. (2017). Causal inference and uplift modelling: a review of
  the literature. PMLR 67 (two-model approach, AUUC).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted

from segflow._result import TableResult
from segflow.campaigns._arms import clean_arm, clean_arm_frame
from segflow.campaigns._customers import refuse_repeated_customers
from segflow.errors import InputError
from segflow.exports._pii import is_customer_key, is_personal

if TYPE_CHECKING:
    import plotly.graph_objects as go


def _prepare(X: pd.DataFrame, categories: dict[str, list[Any]]) -> pd.DataFrame:
    """Text columns become pandas categoricals with the categories seen in fit (unseen
    values become missing, which the gradient-boosting models handle)."""
    out = X.copy()
    for col, cats in categories.items():
        text = out[col].astype("string")
        # unseen values made missing explicitly: pandas 4 refuses values outside the categories
        out[col] = pd.Categorical(text.where(text.isin(cats)), categories=cats)
    return out


def _is_binary(y: np.ndarray) -> bool:
    return bool(np.isin(y, (0.0, 1.0)).all())


class TwoModelUplift(BaseEstimator):
    """Two-model uplift estimator: separate outcome models for treated and control.

    Parameters
    ----------
    estimator : scikit-learn estimator, optional
        Cloned for each arm. Default: ``HistGradientBoostingClassifier`` for a 0/1 outcome,
        ``HistGradientBoostingRegressor`` otherwise (``categorical_features="from_dtype"``).
    random_state : int, optional
        Passed to the default estimators.

    Attributes
    ----------
    model_treated_, model_control_ : estimator
    categories_ : dict
        Categories of each text feature seen in fit.
    feature_names_in_ : ndarray of str
    binary_ : bool
        Whether the outcome was 0/1 (uplift is then a difference in probabilities).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=2000)})
    >>> t = rng.integers(0, 2, 2000)
    >>> y = (rng.random(2000) < 0.1 + 0.2 * t * (X.x > 0)).astype(int)
    >>> m = TwoModelUplift(random_state=0).fit(X, y, t)
    >>> bool(m.predict(pd.DataFrame({"x": [1.0]}))[0] > m.predict(pd.DataFrame({"x": [-1.0]}))[0])
    True
    """

    def __init__(self, estimator: Any = None, *, random_state: int | None = None) -> None:
        self.estimator = estimator
        self.random_state = random_state

    def _base(self, binary: bool) -> Any:
        if self.estimator is not None:
            return clone(self.estimator)
        cls = HistGradientBoostingClassifier if binary else HistGradientBoostingRegressor
        return cls(categorical_features="from_dtype", max_iter=100, learning_rate=0.1, max_leaf_nodes=8,
                   min_samples_leaf=100, random_state=self.random_state)

    def fit(self, X: pd.DataFrame, y: Any, treatment: Any) -> TwoModelUplift:
        """Fit one outcome model per arm.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_customers, n_features)
        y : array-like of shape (n_customers,)
            Outcome (0/1 response, or an amount).
        treatment : array-like of shape (n_customers,)
            1 (or True) for treated customers, 0 for control.
        """
        X, y, t = _validate(X, y, treatment)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.categories_ = _categories(X)
        self.binary_ = _is_binary(y)
        Xp = _prepare(X, self.categories_)
        self.model_treated_ = self._base(self.binary_).fit(Xp[t], y[t])
        self.model_control_ = self._base(self.binary_).fit(Xp[~t], y[~t])
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected lift per customer: E[y | x, treated] - E[y | x, control]."""
        check_is_fitted(self)
        Xp = _prepare(X[list(self.feature_names_in_)], self.categories_)
        return _expected(self.model_treated_, Xp) - _expected(self.model_control_, Xp)


class ClassTransformationUplift(BaseEstimator):
    """Class-transformation uplift estimator for 0/1 outcomes (Jaskowski & Jaroszewicz 2012).

    Parameters
    ----------
    estimator : scikit-learn classifier, optional
        Default: ``HistGradientBoostingClassifier``.
    random_state : int, optional

    Attributes
    ----------
    model_ : classifier
        Fitted on ``Z = y * t + (1 - y) * (1 - t)`` with weights ``0.5 / share of the arm``.
    categories_, feature_names_in_, treated_share_
    """

    def __init__(self, estimator: Any = None, *, random_state: int | None = None) -> None:
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any, treatment: Any) -> ClassTransformationUplift:
        """Fit the classifier of the transformed class ``Z`` (0/1 outcome only)."""
        X, y, t = _validate(X, y, treatment)
        if not _is_binary(y):
            raise InputError("class transformation needs a 0/1 outcome; use TwoModelUplift")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.categories_ = _categories(X)
        self.treated_share_ = float(t.mean())
        z = np.where(t, y, 1.0 - y).astype(int)
        weight = np.where(t, 0.5 / self.treated_share_, 0.5 / (1.0 - self.treated_share_))
        model = clone(self.estimator) if self.estimator is not None else HistGradientBoostingClassifier(
            categorical_features="from_dtype", max_iter=100, learning_rate=0.1, max_leaf_nodes=8,
            min_samples_leaf=100, random_state=self.random_state)
        self.model_ = model.fit(_prepare(X, self.categories_), z, sample_weight=weight)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected lift in response probability: ``2 P(Z = 1 | x) - 1``."""
        check_is_fitted(self)
        Xp = _prepare(X[list(self.feature_names_in_)], self.categories_)
        return 2.0 * self.model_.predict_proba(Xp)[:, 1] - 1.0


def _expected(model: Any, X: pd.DataFrame) -> np.ndarray:
    if is_classifier(model):
        return model.predict_proba(X)[:, 1]
    return np.asarray(model.predict(X), dtype=float)


def _categories(X: pd.DataFrame) -> dict[str, list[Any]]:
    text = [c for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c])
                                         or pd.api.types.is_bool_dtype(X[c]))]
    return {c: sorted(X[c].dropna().astype(str).unique().tolist()) for c in text}


def _validate(X: Any, y: Any, treatment: Any) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(np.asarray(X)).rename(columns=str)
    y = np.asarray(y, dtype=float)
    t = np.asarray(treatment).astype(bool)
    if not (len(X) == len(y) == len(t)):
        raise InputError(f"X, y and treatment differ in length ({len(X)}, {len(y)}, {len(t)})")
    if np.isnan(y).any():
        raise InputError(f"the outcome has {int(np.isnan(y).sum())} missing values")
    if t.all() or not t.any():
        raise InputError("uplift needs both treated and control customers")
    return X, y, t


# -- evaluation ---------------------------------------------------------------------------


def qini_curve(y: Any, treatment: Any, uplift: Any) -> pd.DataFrame:
    """The Qini curve of uplift scores (Radcliffe 2007), evaluated at each distinct score.

    Customers are sorted by predicted uplift, highest first; tied scores enter together.
    After the top ``k`` customers, with ``R_t, N_t`` (``R_c, N_c``) the responses and
    counts of treated (control) customers among them:
    ``qini(k) = R_t - R_c * N_t / N_c`` (incremental responders; ``R_t`` while ``N_c = 0``,
    as no control response is there to subtract) and ``uplift_curve(k) = (R_t / N_t - R_c /
    N_c) * k`` (a rate of an arm without customers counts as 0).

    Returns
    -------
    pandas.DataFrame
        ``k``, ``fraction`` (k / n), ``qini``, ``uplift_curve``, and ``random`` (the
        straight line to the final Qini value), starting with the point (0, 0).
    """
    y = np.asarray(y, dtype=float)
    t = np.asarray(treatment).astype(bool)
    s = np.asarray(uplift, dtype=float)
    order = np.argsort(-s, kind="mergesort")
    y, t, s = y[order], t[order], s[order]
    nt, nc = np.cumsum(t), np.cumsum(~t)
    rt, rc = np.cumsum(y * t), np.cumsum(y * ~t)
    last = np.r_[s[1:] != s[:-1], True]  # end of each group of tied scores
    nt, nc, rt, rc = nt[last], nc[last], rt[last], rc[last]
    k = (nt + nc).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        qini = np.where(nc > 0, rt - rc * nt / nc, rt)
        rate_t = np.where(nt > 0, rt / nt, 0.0)
        rate_c = np.where(nc > 0, rc / nc, 0.0)
    n = float(len(y))
    curve = pd.DataFrame({"k": np.r_[0.0, k], "qini": np.r_[0.0, qini],
                          "uplift_curve": np.r_[0.0, (rate_t - rate_c) * k]})
    curve["fraction"] = curve.k / n
    curve["random"] = curve.fraction * curve.qini.iloc[-1]
    return curve[["k", "fraction", "qini", "uplift_curve", "random"]]


def qini_scores(curve: pd.DataFrame) -> dict[str, float]:
    """Areas under the curves (trapezoid over the fraction targeted), per customer.

    ``qini_coefficient`` = (area under the Qini curve - area under the random line) / n:
    incremental responders per customer gained by ranking with the model instead of at
    random (0 = no better than random). ``auuc`` = area under the uplift curve / n, and
    ``auuc_random`` its random-targeting value (half the overall lift).
    """
    n = float(curve.k.iloc[-1])
    x = curve.fraction.to_numpy()
    area = float(np.trapezoid(curve.qini.to_numpy(), x))
    area_random = float(np.trapezoid(curve.random.to_numpy(), x))
    auuc = float(np.trapezoid(curve.uplift_curve.to_numpy(), x))
    return {
        "qini_coefficient": (area - area_random) / n,
        "auuc": auuc / n,
        "auuc_random": float(curve.uplift_curve.iloc[-1]) / (2.0 * n),
        "overall_lift": float(curve.uplift_curve.iloc[-1]) / n,
    }


class UpliftResult(TableResult):
    """An uplift model evaluated on held-out customers.

    Attributes
    ----------
    model : TwoModelUplift or ClassTransformationUplift
        Fitted on the training customers.
    curve : pandas.DataFrame
        Qini curve on the held-out customers (``to_pandas()`` returns it).
    scores : dict
        ``qini_coefficient``, ``auuc``, ``auuc_random``, ``overall_lift``, ``n_train``,
        ``n_test``.
    deciles : pandas.DataFrame
        Held-out customers in ten groups by predicted uplift (highest first): predicted
        and observed lift (treated minus control response) per group.
    """

    def __init__(self, model: Any, curve: pd.DataFrame, scores: dict[str, float],
                 deciles: pd.DataFrame) -> None:
        self.model = model
        self.curve = curve
        self.scores = scores
        self.deciles = deciles

    def to_pandas(self) -> pd.DataFrame:
        return self.curve.copy()

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "deciles": self.deciles.to_dict(orient="records"),
                **super().to_dict()}

    def figure(self) -> go.Figure:
        from segflow.viz._campaigns import qini_plot

        return qini_plot(self.curve, title=f"Qini curve on {self.scores['n_test']} held-out "
                         f"customers (Qini coefficient {self.scores['qini_coefficient']:.4f})")

    def __repr__(self) -> str:
        return (f"UpliftResult({type(self.model).__name__}, "
                f"qini_coefficient={self.scores['qini_coefficient']:.4g}, "
                f"auuc={self.scores['auuc']:.4g}, n_test={self.scores['n_test']})")


def fit_uplift(
    responses: pd.DataFrame,
    *,
    arm_col: str,
    control: str,
    outcome: str,
    features: Sequence[str],
    treated: str | None = None,
    method: Literal["two_model", "class_transformation"] = "two_model",
    test_size: float = 0.3,
    random_state: int = 0,
    estimator: Any = None,
    id_col: str | None = None,
    source: str | None = None,
) -> UpliftResult:
    """Fit an uplift model on part of a customer-level table; evaluate it on the rest.

    Parameters
    ----------
    responses : pandas.DataFrame
        One row per customer (the model is fitted in memory on these rows; sample first
        for very large experiments).
    arm_col, control, outcome : str
    features : sequence of str
        Pre-treatment attributes only (segment, tenure, RFM scores...); never anything
        measured after the exposure. A personal column (``email``, ``phone``, ``name``...:
        :func:`segflow.exports.is_personal`) or one identifying customers (``customer_id``:
        :func:`segflow.exports._pii.is_customer_key`) is an :class:`InputError`.
    treated : str, optional
        The treated arm when there are several (default: every non-control arm pooled).
    method : {"two_model", "class_transformation"}, default="two_model"
    test_size : float, default=0.3
        Share of customers held out, stratified by arm.
    random_state : int, default=0
    id_col : str, optional
        The column identifying customers, checked one row per customer (a repeated customer
        could be in the training and the held-out part): default ``customer_id``, else the
        first column named as a customer key, as in :func:`campaign_effect`.
    source : str, optional
        A name for ``responses`` used in error messages (e.g. the file name).

    Returns
    -------
    UpliftResult

    Notes
    -----
    Arms are read as :func:`campaign_effect` reads them (:mod:`segflow.campaigns._arms`):
    trimmed, rows without an arm left out (counted in a warning), two arm values differing
    only in case an error. A missing or non-numeric outcome of a kept row is an InputError
    naming the row (its position in ``responses``, from 1) and the column.
    """
    from sklearn.model_selection import train_test_split

    missing = [c for c in [arm_col, outcome, *features] if c not in responses.columns]
    if missing:
        raise InputError(f"column not found; columns are: {', '.join(map(str, responses.columns))}",
                         column=missing[0], file=source)
    for col in features:  # one category per person: the model would learn individuals
        what = ("holds personal data" if is_personal(col)
                else "identifies customers" if is_customer_key(col) else None)
        if what:
            raise InputError(f"cannot use {col!r} as a feature: it {what} (one value "
                             "per person); use a segment or a coarser column such as a region",
                             file=source, column=col)
    responses = responses.reset_index(drop=True)  # position = row of the file, from 1
    refuse_repeated_customers(responses, id_col, source)
    data = clean_arm_frame(responses, arm_col, source=source)
    control = clean_arm(control)
    treated = None if treated is None else clean_arm(treated)
    arm = data[arm_col]
    keep = (arm == control) | ((arm == treated) if treated is not None else True)
    data = data[keep.to_numpy()]
    _refuse_one_arm(data[arm_col], arm, control, treated, arm_col, source)
    _refuse_missing_outcome(data[outcome], outcome, source)
    if method == "class_transformation":
        _refuse_non_binary(data[outcome], outcome, source)
    t = (data[arm_col].astype(str) != control).to_numpy()
    train, test = train_test_split(np.arange(len(data)), test_size=test_size,
                                   random_state=random_state, stratify=t)
    cls = TwoModelUplift if method == "two_model" else ClassTransformationUplift
    model = cls(estimator, random_state=random_state)
    X = data[list(features)]
    y = pd.to_numeric(data[outcome], errors="coerce").to_numpy(float)
    model.fit(X.iloc[train], y[train], t[train])
    pred = model.predict(X.iloc[test])
    curve = qini_curve(y[test], t[test], pred)
    scores = {**qini_scores(curve), "n_train": int(len(train)), "n_test": int(len(test))}
    return UpliftResult(model, curve, scores, _deciles(y[test], t[test], pred))


def _refuse_missing_outcome(values: pd.Series, column: str, source: str | None) -> None:
    """InputError naming the first row (from 1) whose outcome is missing or not a number."""
    y = pd.to_numeric(values, errors="coerce")
    bad = y.isna().to_numpy()
    if bad.any():
        first = int(values.index[bad][0])
        raw = values.iloc[int(bad.argmax())]
        what = "missing" if pd.isna(raw) else f"not a number ({raw!r})"
        n = int(bad.sum())
        who = "1 customer of the experiment has" if n == 1 else f"{n:,} customers of the experiment have"
        raise InputError(f"the outcome is {what}; {who} no numeric outcome: fill or drop those rows",
                         file=source, row=first + 1, column=column)


def _refuse_one_arm(kept: pd.Series, arms: pd.Series, control: str, treated: str | None,
                    column: str, source: str | None) -> None:
    """InputError naming the file and the arm column when the kept rows lack the control
    arm or every treated arm (the model's own check said only "uplift needs both treated and
    control customers")."""
    found = ", ".join(repr(a) for a in sorted(arms.dropna().astype(str).unique())) or "none"
    kept = kept.astype(str)
    if not (kept == control).any():
        raise InputError(f"no customer has the control arm {control!r}; arms found: {found}",
                         file=source, column=column)
    if (kept == control).all():
        which = f"the treated arm {treated!r}" if treated is not None else "an arm other than the control"
        raise InputError(f"no customer has {which}; arms found: {found}", file=source, column=column)


def _refuse_non_binary(values: pd.Series, column: str, source: str | None) -> None:
    """InputError naming the first rows (from 1) whose outcome is not 0 or 1, for the class
    transformation (a 0/1 outcome only)."""
    y = pd.to_numeric(values, errors="coerce")
    bad = ~y.isin([0, 1]).to_numpy()
    if bad.any():
        rows = [int(i) + 1 for i in values.index[bad][:3]]
        first = values[bad].iloc[0]
        first = first.item() if hasattr(first, "item") else first  # 2, not np.int64(2)
        raise InputError(f"the class transformation needs a 0/1 outcome, got {first!r}; "
                         "use the two-model method (--method two_model) for amounts or counts",
                         file=source, row=rows, column=column, rows_in_all=int(bad.sum()))


def _deciles(y: np.ndarray, t: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    rank = np.argsort(np.argsort(-pred, kind="mergesort"), kind="mergesort")
    group = (rank * 10 // len(pred)) + 1
    f = pd.DataFrame({"decile": group, "y": y, "t": t, "pred": pred})
    g = f.groupby("decile")
    out = pd.DataFrame({
        "customers": g.size(),
        "predicted_lift": g.pred.mean(),
        "observed_lift": g.apply(lambda d: d.y[d.t].mean() - d.y[~d.t].mean(),
                                 include_groups=False),
    })
    return out.reset_index()
