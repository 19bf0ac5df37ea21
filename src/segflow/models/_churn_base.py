"""Shared guts of the supervised churn and next-segment models.

Both are scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (native
categorical support, missing values handled by the trees) whose probabilities are calibrated
on a *time-held-out* fold: the boosting model is fitted on the earlier snapshots of the
training data and the calibrator (Platt's sigmoid or isotonic regression, through
:class:`~sklearn.calibration.CalibratedClassifierCV` on a frozen estimator) on the latest one.
That is the situation the model meets in use: it is always applied to a later period than the
one it learned from.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from segflow.errors import InputError, SegflowError

#: HistGradientBoosting handles at most this many categories per feature (max_bins - 1).
MAX_CATEGORIES = 254


def as_frame(X: Any) -> pd.DataFrame:
    """``X`` as a DataFrame (arrays get column names ``x0, x1, ...``)."""
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise InputError(f"X must be a 2-D table of features, got an array of shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


def _is_categorical(series: pd.Series) -> bool:
    """Text or category columns; an object column holding only numbers is numeric."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return True
    if pd.api.types.is_object_dtype(series.dtype):
        values = series.dropna()
        return not values.map(lambda v: isinstance(v, int | float | np.number)).all()
    return pd.api.types.is_string_dtype(series.dtype)


#: Folds of CalibratedClassifierCV's default cross-validation over the calibration rows.
_CALIBRATION_FOLDS = 5


class BoostedCalibratedClassifier(BaseEstimator):
    """Common fit/transform logic; subclasses define the public API and the docs."""

    # -- feature preparation ---------------------------------------------------------------
    def _learn_columns(self, X: pd.DataFrame) -> None:
        if X.shape[1] == 0:
            raise InputError("X has no feature columns")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = X.shape[1]
        categories: dict[str, list[str]] = {}
        for name in X.columns:
            col = X[name]
            if not col.notna().any():
                raise InputError(
                    f"feature {name!r} is missing for every row; drop it before fitting",
                    column=str(name),
                )
            if _is_categorical(col):
                counts = col.dropna().astype(str).value_counts(sort=True)
                if len(counts) > MAX_CATEGORIES:
                    dropped = len(counts) - MAX_CATEGORIES
                    warnings.warn(
                        f"feature {name!r} has {len(counts)} categories; kept the "
                        f"{MAX_CATEGORIES} most frequent and treat {dropped} rarer ones as "
                        "missing",
                        UserWarning,
                        stacklevel=3,
                    )
                    counts = counts.iloc[:MAX_CATEGORIES]
                categories[str(name)] = sorted(counts.index)
            elif not (
                pd.api.types.is_numeric_dtype(col.dtype)
                or pd.api.types.is_bool_dtype(col.dtype)
                or pd.api.types.is_object_dtype(col.dtype)  # numbers with None (see above)
            ):
                raise InputError(
                    f"feature {name!r} has type {col.dtype}; expected numbers, booleans or text "
                    "categories (convert dates to numbers of days first)",
                    column=str(name),
                )
        self.categories_ = categories

    def _transform(self, X: Any) -> pd.DataFrame:
        """The model matrix: numbers as float, categories with the fitted levels."""
        X = as_frame(X)
        names = list(self.feature_names_in_)
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise InputError(
                f"X lacks the feature column(s) {', '.join(map(repr, missing))} seen at fit time"
            )
        out = {}
        for name in names:
            col = X[name]
            if name in self.categories_:
                levels = self.categories_[name]
                values = col.astype("string").astype(object).where(col.notna(), None)
                # a level unseen at fit time (or a rare one dropped there) is missing, said
                # explicitly: pandas 4 refuses values outside a Categorical's categories
                values = values.where(values.isin(levels), None)
                out[name] = pd.Categorical(values, categories=levels)
            else:
                out[name] = pd.to_numeric(col, errors="raise").astype("float64").to_numpy()
        return pd.DataFrame(out, index=range(len(X)))

    # -- threads -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """Limit OpenMP threads to ``n_threads`` (``None``: the library default, all cores)."""
        if self.n_threads is None:
            yield
        else:
            with threadpool_limits(limits=int(self.n_threads), user_api="openmp"):
                yield

    # -- fitting -----------------------------------------------------------------------------
    def _booster(self) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            categorical_features="from_dtype",
            early_stopping=self.early_stopping,
            random_state=self.random_state,
        )

    def _calibration_split(
        self, y: np.ndarray, groups: Sequence[Any] | None
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """Row indices (fit, calibrate) and the kind of split ("time" or "random")."""
        n = len(y)
        index = np.arange(n)
        if groups is not None:
            g = np.asarray(groups)
            if len(g) != n:
                raise InputError(f"groups has {len(g)} entries but X has {n} rows")
            latest = np.max(g)
            cal = g == latest
            if cal.any() and (~cal).any():
                return index[~cal], index[cal], "time"
            warnings.warn(
                "groups hold a single snapshot date; calibrating on a random "
                f"{self.calibration_fraction:.0%} of the rows instead of a later snapshot",
                UserWarning,
                stacklevel=3,
            )
        stratify = y if np.min(np.unique(y, return_counts=True)[1]) >= 2 else None
        try:
            fit_idx, cal_idx = train_test_split(
                index,
                test_size=self.calibration_fraction,
                random_state=self.random_state,
                stratify=stratify,
            )
        except ValueError as exc:  # e.g. fewer calibration rows than classes
            raise SegflowError(f"{n} rows are too few to set {self.calibration_fraction:.0%} aside "
                               f"for calibration ({exc}); use more customers or snapshots") from None
        return np.sort(fit_idx), np.sort(cal_idx), "random"

    def _fit_calibrated(
        self, X: Any, y: np.ndarray, groups: Sequence[Any] | None
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Fit booster + calibrator; returns the calibration fold (matrix, labels)."""
        if self.calibration not in ("sigmoid", "isotonic"):
            raise SegflowError(
                f"calibration must be 'sigmoid' or 'isotonic', got {self.calibration!r}"
            )
        X = as_frame(X)
        if len(X) != len(y):
            raise InputError(f"X has {len(X)} rows but y has {len(y)} labels")
        self._learn_columns(X)
        Xt = self._transform(X)
        fit_idx, cal_idx, kind = self._calibration_split(y, groups)
        for part, idx in (("fitting", fit_idx), ("calibration", cal_idx)):
            if len(np.unique(y[idx])) < 2:
                raise SegflowError(
                    f"the {part} fold ({len(idx)} rows) holds a single class; "
                    "the model needs both outcomes in each fold (more snapshots or customers)"
                )
        largest = int(np.max(np.unique(y[cal_idx], return_counts=True)[1]))
        if largest < _CALIBRATION_FOLDS:  # scikit-learn's stratified folds need that many of a class
            raise SegflowError(
                f"the calibration fold ({len(cal_idx)} rows) has fewer than {_CALIBRATION_FOLDS} rows "
                "of every outcome; use more customers or snapshots"
            )
        with self._threads():
            booster = self._booster().fit(Xt.iloc[fit_idx], y[fit_idx])
        calibrated = CalibratedClassifierCV(FrozenEstimator(booster), method=self.calibration)
        with warnings.catch_warnings(), self._threads():
            # a class absent from the calibration fold is calibrated to its prior: fine.
            warnings.filterwarnings("ignore", message=".*only one class.*")
            calibrated.fit(Xt.iloc[cal_idx], y[cal_idx])
        self.booster_ = booster
        self.calibrated_ = calibrated
        self.classes_ = calibrated.classes_
        self.calibration_split_ = kind
        self.n_fit_rows_ = len(fit_idx)
        self.n_calibration_rows_ = len(cal_idx)
        return Xt.iloc[cal_idx], y[cal_idx]
