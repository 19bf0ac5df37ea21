"""The generated nearest-centroid expression gives the same segments on Spark as on DuckDB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests._engines import require_spark

from segflow.segments._cluster import GaussianMixtureSegmenter, KPrototypesSegmenter

pytestmark = [pytest.mark.spark, pytest.mark.slow]



def test_engine_assignment_on_spark_equals_predict(tmp_path):
    require_spark()
    from segflow.engine import Engine
    from segflow.store import Store

    rng = np.random.default_rng(9)
    n = 600
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "frequency": rng.poisson(3, n).astype(float),
            "monetary": rng.lognormal(4, 1, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    frame.loc[:9, "monetary"] = None
    features = frame.drop(columns="customer_id")
    store = Store(":memory:")
    engine = Engine("spark", store)
    try:
        table = engine.from_arrow(pa.Table.from_pandas(frame, preserve_index=False), "cluster_features")
        for cls in (KPrototypesSegmenter, GaussianMixtureSegmenter):
            seg = cls(k=3, n_bootstrap=0, random_state=0).fit(features)
            out = seg.assign(table).to_pandas().sort_values("customer_id")
            assert out["segment_rank"].tolist() == seg.predict(features).tolist(), cls.__name__
    finally:
        engine.close()
        store.close()
