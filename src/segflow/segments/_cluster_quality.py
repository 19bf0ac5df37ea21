"""Choosing k for the clustering segmenters: the quality indices of each candidate k
(:func:`quality_table`) and the documented voting rule over them (:func:`choose_k`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    pairwise_distances,
    silhouette_score,
)

SILHOUETTE_SAMPLE = 3_000


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
