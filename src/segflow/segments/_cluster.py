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

The shared fitting logic is :class:`~segflow.segments._cluster_base._BaseSegmenter`; choosing
k is :mod:`segflow.segments._cluster_quality`. This module holds the three estimators and
re-exports the names the package and older imports use (``choose_k``, ``quality_table``).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from segflow.errors import InputError
from segflow.segments._cluster_base import STABILITY_SAMPLE, _BaseSegmenter
from segflow.segments._cluster_kproto import KPrototypesCore
from segflow.segments._cluster_prep import FeaturePrep
from segflow.segments._cluster_quality import SILHOUETTE_SAMPLE, choose_k, quality_table

__all__ = [
    "SILHOUETTE_SAMPLE",
    "STABILITY_SAMPLE",
    "GaussianMixtureSegmenter",
    "KMeansSegmenter",
    "KPrototypesSegmenter",
    "_BaseSegmenter",
    "choose_k",
    "quality_table",
]


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
