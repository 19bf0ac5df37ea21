"""Figures of automatic k and stability carry the fitted numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segflow.segments._cluster import KMeansSegmenter
from segflow.viz._segments import k_quality_figure, stability_figure


def test_quality_and_stability_figures():
    rng = np.random.default_rng(2)
    X = pd.DataFrame(np.vstack([rng.normal(m, 0.4, (150, 2)) for m in (0, 4, 8)]), columns=["a", "b"])
    seg = KMeansSegmenter(k_range=(2, 5), n_bootstrap=4, log_transform=False, random_state=0).fit(X)
    fig = k_quality_figure(seg.quality_)
    assert [list(t.x) for t in fig.data] == [[2, 3, 4, 5]] * 3
    assert list(fig.data[0].y) == pytest.approx(list(seg.quality_["silhouette"]))
    assert any(shape.x0 == seg.k_ for shape in fig.layout.shapes)
    bars = stability_figure(seg.stability_.per_segment, seg.names_)
    assert list(bars.data[0].y) == pytest.approx(list(seg.stability_.per_segment["jaccard"]))
    assert bars.data[0].x[0].startswith("1: ")
