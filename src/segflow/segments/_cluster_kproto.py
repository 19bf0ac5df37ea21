"""k-prototypes clustering for mixed numeric and categorical data, on NumPy.

Huang, Z. (1998). Extensions to the k-means algorithm for clustering large data sets with
categorical values. *Data Mining and Knowledge Discovery* 2, 283-304.

The cost of a partition is (Huang 1998, eq. 9)

    E = sum_l sum_{i in l} [ sum_numeric (x_ij - q_lj)^2 + gamma * sum_categorical 1(x_ij != q_lj) ]

with prototypes ``q_l``: the mean of each numeric feature and the mode of each categorical one.
We work in the design space of :mod:`segflow.segments._cluster_prep`, where a categorical
column is an indicator block worth ``w = sqrt(gamma / 2)``: if prototypes keep one-hot modes,
the squared Euclidean distance equals Huang's dissimilarity exactly. The algorithm is the batch
(Lloyd) form of Huang's: assign every customer to its nearest prototype, then recompute means
and modes, until no label changes. Huang's original moves one object at a time; the batch
form reaches a local minimum of the same cost and vectorises. Initial prototypes are
customers chosen by k-means++ seeding (Arthur & Vassilvitskii 2007), so they are valid
one-hot modes from the start. Several starts; the lowest cost wins.
"""

from __future__ import annotations

import numpy as np


class KPrototypesCore:
    """Batch k-prototypes on a prepared design matrix (private; no input validation).

    Parameters
    ----------
    n_clusters : int
    n_numeric : int
        The first ``n_numeric`` design columns are numeric.
    blocks : list of (start, stop)
        Column ranges of the categorical indicator blocks.
    weight : float
        The indicator value ``w`` of the blocks.
    n_init, max_iter : int
    random_state : int or None
    """

    def __init__(
        self,
        n_clusters: int,
        *,
        n_numeric: int,
        blocks: list[tuple[int, int]],
        weight: float,
        n_init: int = 4,
        max_iter: int = 100,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_numeric = n_numeric
        self.blocks = blocks
        self.weight = weight
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, design: np.ndarray) -> KPrototypesCore:
        rng = np.random.default_rng(self.random_state)
        best: tuple[float, np.ndarray, np.ndarray, int] | None = None
        for _ in range(self.n_init):
            centers, labels, cost, n_iter = self._single(design, rng)
            if best is None or cost < best[0]:
                best = (cost, centers, labels, n_iter)
        assert best is not None
        self.cost_, self.cluster_centers_, self.labels_, self.n_iter_ = best
        return self

    def predict(self, design: np.ndarray) -> np.ndarray:
        return np.argmin(_sq_dist(design, self.cluster_centers_), axis=1)

    # -- guts ----------------------------------------------------------------------------
    def _single(
        self, design: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, float, int]:
        centers = _kmeanspp(design, self.n_clusters, rng)
        labels = np.full(design.shape[0], -1)
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 - n_iter is reported
            dist = _sq_dist(design, centers)
            new = np.argmin(dist, axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            centers = self._prototypes(design, labels, dist, centers)
        cost = float(_sq_dist(design, centers)[np.arange(len(labels)), labels].sum())
        return centers, labels, cost, n_iter

    def _prototypes(
        self, design: np.ndarray, labels: np.ndarray, dist: np.ndarray, old: np.ndarray
    ) -> np.ndarray:
        k = self.n_clusters
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros((k, design.shape[1]))
        np.add.at(sums, labels, design)
        centers = old.copy()
        nonempty = counts > 0
        p = self.n_numeric
        centers[nonempty, :p] = sums[nonempty, :p] / counts[nonempty, None]
        for start, stop in self.blocks:  # mode = level with the largest indicator sum
            block = np.zeros((k, stop - start))
            mode = np.argmax(sums[:, start:stop], axis=1)
            block[np.arange(k), mode] = self.weight
            centers[nonempty, start:stop] = block[nonempty]
        for j in np.nonzero(~nonempty)[0]:  # empty cluster: reseed at the worst-fitted row
            worst = int(np.argmax(dist[np.arange(len(labels)), labels]))
            centers[j] = design[worst]
        return centers


def _sq_dist(design: np.ndarray, centers: np.ndarray) -> np.ndarray:
    d = (
        np.einsum("ij,ij->i", design, design)[:, None]
        - 2.0 * design @ centers.T
        + np.einsum("ij,ij->i", centers, centers)[None, :]
    )
    return np.maximum(d, 0.0)


def _kmeanspp(design: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = design.shape[0]
    chosen = [int(rng.integers(n))]
    closest = _sq_dist(design, design[chosen]).ravel()
    for _ in range(1, k):
        total = closest.sum()
        idx = int(rng.integers(n)) if total <= 0 else int(rng.choice(n, p=closest / total))
        chosen.append(idx)
        closest = np.minimum(closest, _sq_dist(design, design[[idx]]).ravel())
    return design[chosen].copy()
