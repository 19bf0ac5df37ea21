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


def test_summary_spend_is_the_same_to_the_bit_on_any_thread_count():
    # 4,000 customers with 15 lines of four cent amounts: a float sum of a customer's lines
    # depends on the order a parallel aggregation adds them (measured: 2,641 of 4,000
    # monetary values differed in their last bits between 1 and 4 threads before the spend
    # was summed as a decimal).
    from segflow.models import btyd_summary

    rng = np.random.default_rng(10)
    n = 60_000
    cents = rng.choice([10, 20, 70, 333], n)
    tx = pd.DataFrame({
        "customer_id": [f"c{c:04d}" for c in np.repeat(np.arange(4000), 15)],
        "ts": pd.to_datetime("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
        "amount": cents / 100.0,
    })
    runs = []
    for threads in (1, 4):
        con = ibis.duckdb.connect(threads=threads)
        t = con.create_table("tx", tx)
        s = btyd_summary(t, calibration_end="2025-01-01", warn=False).to_pandas()
        runs.append(s.sort_values("customer_id").reset_index(drop=True))
    a, b = runs
    assert a.monetary_value.fillna(-1.0).to_numpy().tobytes() == b.monetary_value.fillna(-1.0).to_numpy().tobytes()
    # and the value is the exact one: the repeat purchases' cents over x, from pandas on integers
    day = tx.assign(day=tx.ts.dt.normalize(), c=cents).groupby(["customer_id", "day"]).c.sum().reset_index()
    day = day.sort_values(["customer_id", "day"])
    repeat = day.groupby("customer_id").c.sum() - day.groupby("customer_id").c.first()
    x = day.groupby("customer_id").size() - 1
    expected = (repeat / x / 100.0).where(x > 0)
    got = a.set_index("customer_id").monetary_value
    np.testing.assert_allclose(got.to_numpy(), expected.loc[got.index].to_numpy(), rtol=1e-12)
