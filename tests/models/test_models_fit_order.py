"""Equal inputs, equal fits: a model fitted on an Ibis table gives bit-identical parameters
whatever order the engine's parallel group-by returns the compressed rows in."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

from segflow.models import BetaGeoModel, GammaGammaModel


def _summary(n: int = 8000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.poisson(2, n)
    T = rng.integers(10, 60, n).astype(float)
    t_x = np.where(x > 0, np.minimum(T, rng.uniform(0, 1, n) * T).round(0), 0.0)
    mv = np.where(x > 0, rng.gamma(2, 20, n).round(2), np.nan)
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "x": x, "t_x": t_x, "T": T,
                         "monetary_value": mv})


def test_fits_on_an_engine_table_do_not_depend_on_thread_count_or_row_order():
    frame = _summary()
    fits = []
    for threads, seed in ((1, 0), (4, 1), (2, 2)):
        shuffled = frame.sample(frac=1.0, random_state=seed)  # rows arrive in another order
        con = ibis.duckdb.connect(threads=threads)
        t = con.create_table("summary", shuffled)
        bg = BetaGeoModel(penalizer=0.01).fit(t.select("x", "t_x", "T"))
        gg = GammaGammaModel().fit(t.filter(t.x > 0).select("x", "monetary_value"))
        fits.append((tuple(bg.params_.values()), tuple(gg.params_.values())))
        con.disconnect()
    assert fits[0] == fits[1] == fits[2], fits  # bit for bit, not to a tolerance
