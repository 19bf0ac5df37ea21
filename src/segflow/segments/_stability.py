"""Bootstrap stability of a clustering: per-segment Jaccard and overall ARI.

Hennig, C. (2007). Cluster-wise assessment of cluster stability. *Computational Statistics &
Data Analysis* 52, 258-271 (the ``clusterboot`` method of the R package fpc).

Per segment (Hennig 2007, section 2): draw a bootstrap sample (n rows with replacement), refit
the clustering with the same k on it, and compare each original segment ``C``, restricted to the
distinct customers drawn, with every bootstrap cluster ``D`` by the Jaccard coefficient
``|C ∩ D| / |C ∪ D|``; the segment's value in that run is its best match. The stability of the
segment is the mean over runs. Hennig's reading: a mean Jaccard below 0.5 means the segment
"dissolves", 0.6-0.75 shows a pattern but doubtful membership, above 0.75 it is stable, and
above 0.85 highly stable. We also report the share of runs in which the segment dissolved
(best Jaccard <= 0.5) and was recovered (>= 0.75).

Overall: every bootstrap model labels the same evaluation rows, and the mean adjusted Rand index
(Hubert & Arabie 1985) over all pairs of runs says how reproducible the whole partition is.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Hennig's threshold: below it a segment's membership is doubtful.
STABLE_JACCARD = 0.75
DISSOLVED_JACCARD = 0.5


class UnstableSegmentWarning(UserWarning):
    """A segment's bootstrap Jaccard is below 0.75: its membership is not reproducible."""


class SmallSegmentWarning(UserWarning):
    """A segment holds less than the minimum segment share of customers."""


@dataclass
class Stability:
    """Bootstrap stability of one clustering.

    Attributes
    ----------
    per_segment : DataFrame
        One row per segment (1-based ``segment_rank``): ``jaccard`` (mean best Jaccard),
        ``dissolved`` and ``recovered`` (share of runs with Jaccard <= 0.5 / >= 0.75).
    ari : float
        Mean adjusted Rand index over all pairs of bootstrap runs.
    n_bootstrap : int
    """

    per_segment: pd.DataFrame
    ari: float
    n_bootstrap: int


def bootstrap_stability(
    fit_predict: Callable[[np.ndarray, int], Callable[[np.ndarray], np.ndarray]],
    design: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    n_bootstrap: int = 20,
    random_state: int | None = None,
) -> Stability:
    """Hennig's clusterboot on a design matrix.

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(rows, seed)`` fits the clustering (same method and k) on ``rows`` and
        returns a function that labels any rows.
    design : ndarray of shape (n, d)
        The evaluation rows.
    labels : ndarray of shape (n,)
        The original segment (0..k-1) of each evaluation row.
    k : int
    n_bootstrap : int, default=20
    random_state : int or None

    Returns
    -------
    Stability
    """
    rng = np.random.default_rng(random_state)
    n = design.shape[0]
    best = np.full((n_bootstrap, k), np.nan)
    runs = []
    for b in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        predict = fit_predict(design[idx], int(rng.integers(2**31 - 1)))
        boot_labels = predict(design)
        runs.append(boot_labels)
        drawn = np.unique(idx)
        best[b] = _best_jaccard(labels[drawn], boot_labels[drawn], k)
    pairs = list(itertools.combinations(range(len(runs)), 2))
    ari = float(np.mean([_ari(runs[i], runs[j]) for i, j in pairs])) if pairs else np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a segment absent from every run
        per_segment = pd.DataFrame(
            {
                "segment_rank": np.arange(1, k + 1),
                "jaccard": np.nanmean(best, axis=0),
                "dissolved": np.nanmean(best <= DISSOLVED_JACCARD, axis=0),
                "recovered": np.nanmean(best >= STABLE_JACCARD, axis=0),
            }
        )
    return Stability(per_segment=per_segment, ari=ari, n_bootstrap=n_bootstrap)


def _ari(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985, from the contingency table).

    Same value as ``sklearn.metrics.adjusted_rand_score`` without its input checks (called
    for every pair of bootstrap runs).
    """
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(float)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    n = float(a.size)
    index, rows, cols = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2) if n > 1 else 0.0
    maximum = (rows + cols) / 2
    if maximum == expected:  # both labelings put everything in one cluster (or all apart)
        return 1.0
    return (index - expected) / (maximum - expected)


def _best_jaccard(original: np.ndarray, boot: np.ndarray, k: int) -> np.ndarray:
    """For each original cluster, the largest Jaccard with any bootstrap cluster."""
    k_boot = int(boot.max()) + 1 if boot.size else 1
    table = np.zeros((k, max(k_boot, 1)))
    np.add.at(table, (original, boot), 1.0)
    size_c = table.sum(axis=1, keepdims=True)
    size_d = table.sum(axis=0, keepdims=True)
    union = size_c + size_d - table
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, table / union, 0.0)
    out = jac.max(axis=1)
    out[size_c.ravel() == 0] = np.nan  # segment not drawn in this run: no evidence
    return out


def warn_unstable(stability: Stability, names: list[str], *, stacklevel: int = 3) -> None:
    """Warn (with numbers) for every segment whose mean Jaccard is below 0.75."""
    frame = stability.per_segment
    weak = frame[frame["jaccard"] < STABLE_JACCARD]
    if weak.empty:
        return
    parts = [
        f"segment {int(r.segment_rank)} ({names[int(r.segment_rank) - 1]}): Jaccard {r.jaccard:.2f}"
        for r in weak.itertuples()
    ]
    warnings.warn(
        f"{len(weak)} of {len(frame)} segments {'is' if len(weak) == 1 else 'are'} unstable (bootstrap Jaccard < "
        f"{STABLE_JACCARD} over {stability.n_bootstrap} runs; overall ARI "
        f"{stability.ari:.2f}): " + "; ".join(parts) + ". Consider fewer segments or other features.",
        UnstableSegmentWarning,
        stacklevel=stacklevel,
    )
