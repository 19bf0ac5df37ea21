"""Clustering segmenters: k-means, Gaussian mixture and k-prototypes, with automatic k.

Each segmenter is a scikit-learn estimator that

1. fits on a random sample of at most ``sample_size`` customers (the architecture's rule: fit
   on the small thing, score back in the engine);
2. prepares features (:mod:`segflow.segments._cluster_prep`: log1p of skewed non-negative
   columns, standard scaling, one-hot or k-prototypes categoricals);
3. with ``k="auto"`` fits every k of ``k_range`` and records the silhouette (on a sample of at
   most 3,000 rows), Davies-Bouldin and Calinski-Harabasz indices in ``quality_``, then picks
   k by the rule in :func:`choose_k`;
4. orders the segments by size (segment 1 is the largest in the sample), suggests names
   (:mod:`segflow.segments._naming`), and measures bootstrap stability per segment (Jaccard,
   Hennig 2007) and overall (ARI), warning about unstable or too-small segments;
5. exports a :class:`~segflow.segments._cluster_model.ClusterModel` (``model_``) that assigns
   every customer in the engine (:meth:`assign`) with a generated nearest-centroid expression.
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
from sklearn.cluster import KMeans
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    pairwise_distances,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from segflow.errors import InputError
from segflow.segments._cluster_kproto import KPrototypesCore
from segflow.segments._cluster_model import ClusterModel
from segflow.segments._cluster_prep import FeaturePrep, fit_prep, split_columns
from segflow.segments._naming import suggest_names
from segflow.segments._stability import (
    SmallSegmentWarning,
    Stability,
    bootstrap_stability,
    warn_unstable,
)

SILHOUETTE_SAMPLE = 3_000
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
        rng = np.random.default_rng(self.random_state)
        if len(frame) > self.sample_size:
            rows = np.sort(rng.choice(len(frame), self.sample_size, replace=False))
            frame = frame.iloc[rows].reset_index(drop=True)
        numeric, categorical = split_columns(frame, list(frame.columns))
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


class KMeansSegmenter(_BaseSegmenter):
    """k-means segmentation with automatic k, bootstrap stability and engine assignment.

    Parameters
    ----------
    k : "auto" or int, default="auto"
        Number of segments; ``"auto"`` chooses it over ``k_range`` (see :func:`choose_k`).
    k_range : tuple of (int, int), default=(2, 10)
        Smallest and largest k tried by ``k="auto"`` (inclusive).
    sample_size : int, default=50_000
        Fit on a uniform random sample of at most this many customers.
    min_segment_share : float, default=0.02
        Over-segmentation guard: with ``k="auto"`` a k whose smallest segment holds less than
        this share of the sample is not chosen; with a fixed k a warning names the segment.
    n_bootstrap : int, default=20
        Bootstrap runs for stability (0 skips it). Runs on at most 2,000 sampled customers.
    scaling : {"standard", "robust"}, default="standard"
    log_transform : "auto", bool or list of str, default="auto"
        log1p of skewed non-negative features (sample skewness > 1), e.g. monetary value.
    categorical_weight : float, default=1.0
        Squared distance of one categorical mismatch, in squared standard units (one-hot
        indicators are worth ``sqrt(categorical_weight / 2)``).
    n_init : int, default=4
        k-means restarts (k-means++ seeding); the lowest inertia wins.
    random_state : int or None, default=None

    Attributes
    ----------
    k_ : int
        Chosen number of segments.
    quality_ : DataFrame
        One row per k tried: ``k``, ``silhouette``, ``davies_bouldin``, ``calinski_harabasz``,
        ``min_share`` (smallest segment's share), ``chosen``.
    stability_ : Stability or None
        Per-segment bootstrap Jaccard and overall ARI.
    cluster_centers_ : ndarray of shape (k, n_design)
        Centres in the design space (scaled features), segment 1 first.
    names_ : list of str
        Suggested segment names.
    labels_ : ndarray
        Segment number (1..k) of each customer of the fitting sample.
    model_ : ClusterModel
        The fitted scheme, JSON-serialisable, for engine assignment and re-application.
    prep_ : FeaturePrep
        The fitted scaling/encoding.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(np.vstack([rng.normal(m, 0.3, (100, 2)) for m in (0, 5, 10)]),
    ...                  columns=["a", "b"])
    >>> seg = KMeansSegmenter(k_range=(2, 5), n_bootstrap=0, log_transform=False,
    ...                       random_state=0).fit(X)
    >>> seg.k_
    3
    """

    _method = "kmeans"

    def __init__(
        self,
        k: int | str = "auto",
        *,
        k_range: tuple[int, int] = (2, 10),
        sample_size: int = 50_000,
        min_segment_share: float = 0.02,
        n_bootstrap: int = 20,
        scaling: str = "standard",
        log_transform: str | bool | list[str] = "auto",
        categorical_weight: float = 1.0,
        n_init: int = 4,
        random_state: int | None = None,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.sample_size = sample_size
        self.min_segment_share = min_segment_share
        self.n_bootstrap = n_bootstrap
        self.scaling = scaling
        self.log_transform = log_transform
        self.categorical_weight = categorical_weight
        self.n_init = n_init
        self.random_state = random_state

    def _fit_core(self, design: np.ndarray, k: int, seed: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=self.n_init, random_state=seed).fit(design)


class GaussianMixtureSegmenter(_BaseSegmenter):
    """Gaussian-mixture segmentation (hard assignment to the most probable component).

    Parameters are those of :class:`KMeansSegmenter` plus

    covariance_type : {"full", "diag"}, default="full"
    reg_covar : float, default=1e-4
        Added to the covariance diagonals (scikit-learn's default is 1e-6; one-hot indicator
        columns are constant inside a component, so we regularise more).

    The engine assignment reproduces ``GaussianMixture.predict`` exactly: the score of component
    ``j`` is ``||(z - mu_j) L_j||^2 - 2 log w_j - 2 log det L_j`` with ``L_j`` the Cholesky factor
    of its precision matrix.
    """

    _method = "gmm"

    def __init__(
        self,
        k: int | str = "auto",
        *,
        k_range: tuple[int, int] = (2, 10),
        sample_size: int = 50_000,
        min_segment_share: float = 0.02,
        n_bootstrap: int = 20,
        scaling: str = "standard",
        log_transform: str | bool | list[str] = "auto",
        categorical_weight: float = 1.0,
        covariance_type: str = "full",
        reg_covar: float = 1e-4,
        n_init: int = 2,
        random_state: int | None = None,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.sample_size = sample_size
        self.min_segment_share = min_segment_share
        self.n_bootstrap = n_bootstrap
        self.scaling = scaling
        self.log_transform = log_transform
        self.categorical_weight = categorical_weight
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.random_state = random_state

    def _fit_core(self, design: np.ndarray, k: int, seed: int) -> GaussianMixture:
        if self.covariance_type not in ("full", "diag"):
            raise InputError(f"covariance_type must be 'full' or 'diag', got {self.covariance_type!r}")
        return GaussianMixture(
            n_components=k,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            n_init=self.n_init,
            random_state=seed,
        ).fit(design)

    def _engine_params(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        gm = self.core_
        d = gm.means_.shape[1]
        if self.covariance_type == "diag":
            chol = np.stack([np.diag(p) for p in gm.precisions_cholesky_])
        else:
            chol = np.asarray(gm.precisions_cholesky_)
        log_det = np.log(np.stack([np.diag(c) for c in chol])).sum(axis=1)
        constants = -2.0 * (np.log(gm.weights_) + log_det)
        assert chol.shape == (len(order), d, d)
        return gm.means_[order], chol[order], constants[order]


class KPrototypesSegmenter(_BaseSegmenter):
    """k-prototypes segmentation of mixed numeric and categorical features (Huang 1998).

    Numeric features are scaled as for k-means; each categorical feature counts
    ``categorical_weight`` (Huang's gamma) per mismatch with the segment's modal level.
    Implemented on NumPy (:mod:`segflow.segments._cluster_kproto`). Parameters are those of
    :class:`KMeansSegmenter` plus ``max_iter`` (default 100); ``categorical_weight`` defaults
    to 0.5, Huang's suggestion of about half the numeric standard deviation (1 after scaling).
    """

    _method = "kprototypes"

    def __init__(
        self,
        k: int | str = "auto",
        *,
        k_range: tuple[int, int] = (2, 10),
        sample_size: int = 50_000,
        min_segment_share: float = 0.02,
        n_bootstrap: int = 20,
        scaling: str = "standard",
        log_transform: str | bool | list[str] = "auto",
        categorical_weight: float = 0.5,
        n_init: int = 4,
        max_iter: int = 100,
        random_state: int | None = None,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.sample_size = sample_size
        self.min_segment_share = min_segment_share
        self.n_bootstrap = n_bootstrap
        self.scaling = scaling
        self.log_transform = log_transform
        self.categorical_weight = categorical_weight
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def _fit_core(self, design: np.ndarray, k: int, seed: int) -> KPrototypesCore:
        prep: FeaturePrep = self.prep_
        blocks, start = [], prep.n_numeric
        weight = prep.categorical[0].weight if prep.categorical else 0.0
        for spec in prep.categorical:
            blocks.append((start, start + len(spec.levels)))
            start += len(spec.levels)
        return KPrototypesCore(
            k,
            n_numeric=prep.n_numeric,
            blocks=blocks,
            weight=weight,
            n_init=self.n_init,
            max_iter=self.max_iter,
            random_state=seed,
        ).fit(design)


# -- k selection -----------------------------------------------------------------------------
def quality_table(
    design: np.ndarray, labels_by_k: dict[int, np.ndarray], *, random_state: int | None = None
) -> pd.DataFrame:
    """Silhouette (Euclidean, on at most 3,000 rows), Davies-Bouldin and Calinski-Harabasz
    of each candidate clustering, with the share of its smallest segment.

    The silhouette's distance matrix is computed once for all k (the same rows are scored
    for every k, so the k are compared on equal terms).
    """
    rng = np.random.default_rng(random_state)
    n = design.shape[0]
    rows = np.sort(rng.choice(n, SILHOUETTE_SAMPLE, replace=False)) if n > SILHOUETTE_SAMPLE else np.arange(n)
    distances = pairwise_distances(design[rows])
    out = []
    for k, labels in labels_by_k.items():
        counts = np.bincount(labels, minlength=k)
        row: dict[str, Any] = {"k": k, "min_share": float(counts.min() / counts.sum())}
        sub = labels[rows]
        if len(np.unique(labels)) >= 2 and 2 <= len(np.unique(sub)) < len(rows):
            row["silhouette"] = float(silhouette_score(distances, sub, metric="precomputed"))
            row["davies_bouldin"] = float(davies_bouldin_score(design, labels))
            row["calinski_harabasz"] = float(calinski_harabasz_score(design, labels))
        else:
            row.update(silhouette=np.nan, davies_bouldin=np.nan, calinski_harabasz=np.nan)
        out.append(row)
    cols = ["k", "silhouette", "davies_bouldin", "calinski_harabasz", "min_share"]
    return pd.DataFrame(out)[cols]


def choose_k(quality: pd.DataFrame, min_segment_share: float) -> int:
    """The documented rule for ``k="auto"``.

    1. Keep the k whose smallest segment holds at least ``min_segment_share`` of the sample
       (if none does, keep all and let the warning speak); never a k with an empty segment.
    2. Each index votes for its best k: the largest silhouette, the smallest Davies-Bouldin,
       the largest Calinski-Harabasz.
    3. A k with two or more votes wins; otherwise the silhouette's choice wins (it is the only
       one of the three bounded and comparable across k). Ties go to the smaller k.
    """
    full = quality[quality["min_share"] > 0]  # a k leaving a segment empty is never chosen
    ok = full[full["min_share"] >= min_segment_share].dropna(subset=["silhouette"])
    if ok.empty:
        ok = full.dropna(subset=["silhouette"])
    if ok.empty:
        return int((full if len(full) else quality)["k"].min())
    ok = ok.sort_values("k")
    votes = [
        int(ok.loc[ok["silhouette"].idxmax(), "k"]),
        int(ok.loc[ok["davies_bouldin"].idxmin(), "k"]),
        int(ok.loc[ok["calinski_harabasz"].idxmax(), "k"]),
    ]
    counts = pd.Series(votes).value_counts()
    top = counts[counts == counts.max()]
    if counts.max() >= 2:
        return int(min(top.index))
    return votes[0]


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
