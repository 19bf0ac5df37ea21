"""The fitting logic shared by the clustering segmenters (:mod:`segflow.segments._cluster`):
sample, prepare features, fit every candidate k, choose k, relabel by size, name, measure
stability, and export the engine model. Subclasses define ``_method`` and ``_fit_core``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import ibis
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from segflow.errors import InputError
from segflow.segments._cluster_model import ClusterModel
from segflow.segments._cluster_prep import FeaturePrep, fit_prep, refuse_infinite, split_columns
from segflow.segments._cluster_quality import choose_k, quality_table
from segflow.segments._naming import suggest_names
from segflow.segments._stability import (
    SmallSegmentWarning,
    Stability,
    bootstrap_stability,
    warn_unstable,
)

STABILITY_SAMPLE = 2_000

Predictor = Callable[[np.ndarray], np.ndarray]


class _BaseSegmenter(ClusterMixin, BaseEstimator):
    """Shared fitting logic; subclasses define ``_method`` and ``_fit_core``."""

    _method = ""

    # -- public API ----------------------------------------------------------------------
    def fit(self, X: pd.DataFrame | np.ndarray, y: None = None) -> _BaseSegmenter:
        """Fit on (a sample of) ``X``: one row per customer, numeric and categorical columns.

        Returns
        -------
        self
        """
        frame = _as_frame(X)
        self._check_params()
        numeric, categorical = split_columns(frame, list(frame.columns))
        # all of X, before the sample: its rows (or customer ids) named as given, and an
        # infinite value out of the sample is no error of predict(X) later
        refuse_infinite(frame, numeric)
        rng = np.random.default_rng(self.random_state)
        if len(frame) > self.sample_size:
            rows = np.sort(rng.choice(len(frame), self.sample_size, replace=False))
            frame = frame.iloc[rows].reset_index(drop=True)
        self.prep_ = fit_prep(
            frame,
            numeric,
            categorical,
            scaling=self.scaling,
            log_transform=self.log_transform,
            categorical_weight=self._gamma(),
        )
        design = self.prep_.transform(frame)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.n_sample_ = len(frame)
        candidates = self._candidates(len(frame), _distinct_rows(design, max(self.k_range[1], 2)))
        seed = int(rng.integers(2**31 - 1))
        with _threads(len(frame)):
            fits = {k: self._fit_core(design, k, seed) for k in candidates}
            labels_by_k = {k: core.predict(design) for k, core in fits.items()}
            self.quality_ = quality_table(design, labels_by_k, random_state=seed)
            self.k_ = choose_k(self.quality_, self.min_segment_share) if self.k == "auto" else self.k
            if float(self.quality_.loc[self.quality_["k"] == self.k_, "min_share"].iloc[0]) <= 0:
                raise InputError(f"k={self.k_} leaves a segment without customers: the features "
                                 "take too few distinct values for that many segments")
            self.quality_["chosen"] = self.quality_["k"] == self.k_
            self.core_ = fits[self.k_]
            self._finish(frame, design, labels_by_k[self.k_], rng)
        return self

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Segment number (1 = largest in the fitting sample) of each row of ``X``."""
        check_is_fitted(self)
        design = self.prep_.transform(_as_frame(X, self.feature_names_in_))
        return self.relabel_[self.core_.predict(design)] + 1

    def fit_predict(self, X: pd.DataFrame | np.ndarray, y: None = None) -> np.ndarray:
        return self.fit(X).predict(X)

    def assign(
        self, table: ibis.Table, *, id_col: str = "customer_id", names: dict[str, str] | None = None
    ) -> ibis.Table:
        """Assign every customer of ``table`` in the engine (see :meth:`ClusterModel.assign`).

        Returns
        -------
        ibis.Table
            ``id_col``, ``segment`` (name), ``segment_rank`` (segment number, 1..k).
        """
        check_is_fitted(self)
        return self.model_.assign(table, id_col=id_col, names=names)

    # -- fitting guts --------------------------------------------------------------------
    def _check_params(self) -> None:
        k_lo, k_hi = self.k_range
        if not (isinstance(k_lo, int | np.integer) and isinstance(k_hi, int | np.integer)) or not 1 <= k_lo <= k_hi:
            raise InputError(f"k_range must be two integers 1 <= low <= high, got {self.k_range!r}")
        if self.k != "auto" and (not isinstance(self.k, int | np.integer) or self.k < 1):
            raise InputError(f"k must be 'auto' or a positive integer, got {self.k!r}")
        if not 0 <= self.min_segment_share < 1:
            raise InputError(f"min_segment_share must be in [0, 1), got {self.min_segment_share!r}")
        if self.sample_size < 2:
            raise InputError(f"sample_size must be at least 2, got {self.sample_size!r}")

    def _candidates(self, n: int, distinct: int) -> list[int]:
        """The k to fit on ``n`` customers of ``distinct`` distinct feature rows (at most)."""
        if distinct < 2 and self.k != 1 and n == 1:  # ("all 1 customers have the same values")
            raise InputError("one customer only: there is nothing to cluster; segments need at least "
                             "two customers whose features differ")
        if distinct < 2 and self.k != 1:
            raise InputError(f"the features do not vary: all {n:,} customers have the same values, "
                             "so there is nothing to cluster; choose features that differ between customers")
        if self.k != "auto":
            if self.k > n:
                raise InputError(f"k={self.k} segments cannot be fitted on {n} customers")
            if self.k > distinct:
                raise InputError(f"k={self.k} segments cannot be fitted: the {n:,} customers "
                                 f"have only {distinct} distinct combinations of the features")
            return [int(self.k)]
        k_lo, k_hi = (int(v) for v in self.k_range)
        ks = [k for k in range(max(k_lo, 2), k_hi + 1) if k < n and k <= distinct]
        if not ks:
            raise InputError(f"k_range {self.k_range} leaves no k to try on {n} customers")
        return ks

    def _gamma(self) -> float:
        return float(self.categorical_weight)

    def _fit_core(self, design: np.ndarray, k: int, seed: int) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _finish(
        self, frame: pd.DataFrame, design: np.ndarray, raw_labels: np.ndarray, rng: np.random.Generator
    ) -> None:
        k = self.k_
        counts = np.bincount(raw_labels, minlength=k)
        order = np.lexsort((np.arange(k), -counts))  # largest first, ties by index
        self.relabel_ = np.empty(k, dtype=np.int64)
        self.relabel_[order] = np.arange(k)
        labels = self.relabel_[raw_labels]
        self.labels_ = labels + 1
        shares = counts[order] / counts.sum()
        self.names_ = suggest_names(*_naming_inputs(frame, labels, k, self.prep_))
        centers, precisions, constants = self._engine_params(order)
        self.cluster_centers_ = centers
        self.model_ = ClusterModel(
            method=self._method,
            prep=self.prep_,
            centers=centers,
            constants=constants,
            names=list(self.names_),
            shares=[float(s) for s in shares],
            precisions=precisions,
        )
        self.stability_ = self._stability(design, labels, rng)
        self.model_.info = self._info(shares)
        self._warn(shares)

    def _engine_params(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        centers = np.asarray(self.core_.cluster_centers_)[order]
        return centers, None, np.zeros(len(order))

    def _stability(
        self, design: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> Stability | None:
        if self.n_bootstrap <= 0:
            return None
        n = design.shape[0]
        rows = rng.choice(n, min(n, STABILITY_SAMPLE), replace=False) if n > STABILITY_SAMPLE else np.arange(n)

        def fit_predict(data: np.ndarray, seed: int) -> Predictor:
            return self._fit_core(data, self.k_, seed).predict

        with threadpool_limits(limits=1):  # at most 2,000 rows: threads only spin-wait
            return bootstrap_stability(
                fit_predict,
                design[rows],
                labels[rows],
                self.k_,
                n_bootstrap=self.n_bootstrap,
                random_state=int(rng.integers(2**31 - 1)),
            )

    def _info(self, shares: np.ndarray) -> dict[str, Any]:
        info: dict[str, Any] = {
            "params": {k: v for k, v in self.get_params().items()},
            "k": int(self.k_),
            "n_sample": int(self.n_sample_),
            "quality": self.quality_.to_dict(orient="records"),
        }
        if self.stability_ is not None:
            info["stability"] = {
                "ari": self.stability_.ari,
                "per_segment": self.stability_.per_segment.to_dict(orient="records"),
            }
        return info

    def _warn(self, shares: np.ndarray) -> None:
        small = [(j + 1, s) for j, s in enumerate(shares) if s < self.min_segment_share]
        if small:
            listed = "; ".join(f"segment {j} ({self.names_[j - 1]}): {s:.1%}" for j, s in small)
            warnings.warn(
                f"{len(small)} of {self.k_} segments {'holds' if len(small) == 1 else 'hold'} less than min_segment_share="
                f"{self.min_segment_share:.1%} of the {self.n_sample_} sampled customers: {listed}",
                SmallSegmentWarning,
                stacklevel=4,
            )
        if self.stability_ is not None:
            warn_unstable(self.stability_, self.names_, stacklevel=4)

    # -- conveniences ----------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Chosen k, the quality table, stability and names as a JSON-ready dict."""
        check_is_fitted(self)
        out: dict[str, Any] = {
            "method": self._method,
            "k": int(self.k_),
            "n_sample": int(self.n_sample_),
            "features": list(self.prep_.feature_names),
            "segments": [
                {"segment_rank": j + 1, "segment": name, "sample_share": float(share)}
                for j, (name, share) in enumerate(zip(self.names_, self.model_.shares, strict=True))
            ],
            "quality": self.quality_.to_dict(orient="records"),
        }
        if self.stability_ is not None:
            per = self.stability_.per_segment
            for seg, row in zip(out["segments"], per.itertuples(), strict=True):
                seg.update(jaccard=float(row.jaccard), dissolved=float(row.dissolved), recovered=float(row.recovered))
            out["stability_ari"] = self.stability_.ari
            out["n_bootstrap"] = self.stability_.n_bootstrap
        return out


# -- helpers ---------------------------------------------------------------------------------
#: Below this many sampled rows, fits run on one thread: on a busy machine OpenMP/BLAS thread
#: teams spin-wait, and we measured a 1,000-row auto-k fit at 43 s with all threads and 3.9 s
#: with one (2 cores, load 5).
SINGLE_THREAD_ROWS = 100_000


def _distinct_rows(design: np.ndarray, cap: int) -> int:
    """How many distinct rows ``design`` has, counted up to ``cap`` + 1 (enough to bound k)."""
    seen: set[bytes] = set()
    for row in np.ascontiguousarray(design, dtype=np.float64):
        seen.add(row.tobytes())
        if len(seen) > cap:
            break
    return len(seen)


def _threads(n_rows: int) -> contextlib.AbstractContextManager[Any]:
    if n_rows < SINGLE_THREAD_ROWS:
        return threadpool_limits(limits=1)
    return contextlib.nullcontext()


def _as_frame(X: pd.DataFrame | np.ndarray, columns: Any = None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise InputError(f"expected a 2-d table of customers x features, got shape {arr.shape}")
        names = list(columns) if columns is not None else [f"x{i}" for i in range(arr.shape[1])]
        frame = pd.DataFrame(arr, columns=names)
    if len(frame) == 0:
        raise InputError("no customers to cluster (the table is empty)")
    return frame


def _naming_inputs(
    frame: pd.DataFrame, labels: np.ndarray, k: int, prep: FeaturePrep
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Standardised differences and categorical make-up of each segment in the sample."""
    numeric = [s.name for s in prep.numeric]
    values = frame[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    std = values.std(ddof=0).replace(0.0, np.nan)
    means = values.groupby(labels).mean().reindex(range(k))
    std_diff = (means - values.mean()) / std
    parts = []
    for spec in prep.categorical:
        level = frame[spec.name].astype("string").fillna("(missing)")
        base = level.value_counts(normalize=True)
        seg = pd.crosstab(labels, level, normalize="index")
        long = seg.stack().rename("share").reset_index()
        long.columns = ["segment", "level", "share"]
        long["segment_rank"] = long["segment"] + 1
        long["column"] = spec.name
        long["base_share"] = long["level"].map(base).astype(float)
        parts.append(long)
    makeup = pd.concat(parts, ignore_index=True) if parts else None
    return std_diff, makeup
