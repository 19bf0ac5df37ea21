"""Holdout validation, scoring and CLV against independent pandas computations on CDNOW."""

from __future__ import annotations

import datetime as dt
import warnings

import ibis
import numpy as np
import pandas as pd
import pytest

from segflow.models import (
    BetaGeoModel,
    GammaGammaModel,
    btyd_summary,
    compress,
    score_customers,
    write_scores,
)
from segflow.models._validation import backtest, validate_holdout


@pytest.fixture(scope="module")
def setup(cdnow_frame: pd.DataFrame):
    con = ibis.duckdb.connect()
    tx = con.create_table("tx", cdnow_frame[["customer_id", "ts", "dollars"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = btyd_summary(
            tx, calibration_end="1997-10-01", observation_end="1998-07-01", amount_col="dollars"
        )
    model = BetaGeoModel().fit(compress(summary))
    spend = GammaGammaModel().fit(summary.select("x", "monetary_value").execute())
    return tx, summary, summary.execute(), model, spend


def test_holdout_metrics_match_pandas(setup) -> None:
    tx, summary, frame, model, spend = setup
    result = validate_holdout(summary, model, spend_model=spend, transactions=tx, amount_col="dollars")
    f = frame.copy()
    f["pred"] = model.expected_purchases(39.0, f.x, f.t_x, f["T"])
    f["rate"] = np.where(f["T"] > 0, f.x / f["T"], 0.0)
    m = result.metrics.set_index("predictor")
    assert m.loc["model", "customers"] == 2357
    assert m.loc["model", "actual_total"] == f.x_holdout.sum()
    assert m.loc["model", "mae_purchases"] == pytest.approx((f.pred - f.x_holdout).abs().mean())
    assert m.loc["model", "rmse_purchases"] == pytest.approx(np.sqrt(((f.pred - f.x_holdout) ** 2).mean()))
    assert m.loc["last_period", "mae_purchases"] == pytest.approx((f.x_last_period - f.x_holdout).abs().mean())
    assert m.loc["ticket_x_frequency", "mae_purchases"] == pytest.approx(
        (f.rate * 39 - f.x_holdout).abs().mean()
    )
    # the model beats both naive baselines on CDNOW
    assert m.loc["model", "mae_purchases"] < m[["mae_purchases"]].drop("model").min().item()
    # conditional expectations by calibration frequency
    bf = result.by_frequency.set_index("x_group")
    zero = f[f.x == 0]
    assert bf.loc["0", "actual"] == pytest.approx(zero.x_holdout.mean())
    assert bf.loc["0", "model"] == pytest.approx(zero.pred.mean())
    assert bf.loc["7+", "customers"] == (f.x >= 7).sum()
    # decile calibration: ranked by predicted holdout spend, ties by customer id
    f["spend"] = f.pred * spend.expected_spend(f.x, f.monetary_value)
    f = f.sort_values(["spend", "customer_id"], ascending=[False, True], ignore_index=True)
    top = f.iloc[: int(np.ceil(len(f) / 10))]
    dc = result.deciles.set_index("decile")
    assert dc.loc[1, "customers"] == len(top)
    assert dc.loc[1, "actual_spend"] == pytest.approx(top.holdout_spend.mean())
    assert dc.loc[1, "predicted_spend"] == pytest.approx(top.spend.mean())
    # tracking: actual cumulative repeat purchases = calibration + holdout repeat purchase days
    tr = result.tracking
    assert tr.actual_cumulative.iloc[-1] == frame.x.sum() + frame.x_holdout.sum()
    # the model's cumulative at the calibration end equals sum_i E[X(T_i)]
    week39 = tr.model_cumulative.iloc[int(round(frame["T"].max())) - 1]
    assert week39 == pytest.approx(model.expected_purchases_new(frame["T"].to_numpy()).sum(), rel=0.02)
    assert result.figure() is not None
    assert '"by_frequency"' in result.to_json()


def test_scores_and_clv(setup, memory_store) -> None:
    _, summary, frame, model, spend = setup
    scores = score_customers(
        summary, model, horizon=52.0, time_unit="W", spend_model=spend, margin=0.3,
        annual_discount_rate=0.0,
    ).execute()
    assert len(scores) == 2357
    f = frame.merge(scores[["customer_id", "p_alive", "expected_purchases", "clv"]], on="customer_id")
    np.testing.assert_allclose(f.p_alive, model.p_alive(f.x, f.t_x, f["T"]))
    np.testing.assert_allclose(f.expected_purchases, model.expected_purchases(52.0, f.x, f.t_x, f["T"]))
    # without discounting, CLV = margin x expected spend x expected purchases over the horizon
    want = 0.3 * spend.expected_spend(f.x, f.monetary_value) * model.expected_purchases(52.0, f.x, f.t_x, f["T"])
    np.testing.assert_allclose(f.clv, want, rtol=1e-9)
    # discounting: monthly steps at 10% a year lower the value by less than 10%
    disc = score_customers(summary, model, horizon=52.0, spend_model=spend, annual_discount_rate=0.1)
    ratio = disc.execute().set_index("customer_id").clv / scores.set_index("customer_id").clv * 0.3
    assert ((ratio > 1 / 1.1) & (ratio < 1)).all()
    with memory_store.run("clv score") as run_id:
        n = write_scores(memory_store, score_customers(summary, model, horizon=52.0),
                         snapshot_date=dt.date(1997, 10, 1), model="bgnbd", run_id=run_id)
    assert n == 2357 * 3
    stored = memory_store.sql("select score, count(*) n from customer_scores group by score").to_pandas()
    assert set(stored.score) == {"p_alive", "expected_purchases", "p_no_purchase"}


@pytest.mark.slow
def test_backtest(setup) -> None:
    tx, *_ = setup
    result = backtest(
        tx, ["1997-07-01", "1997-10-01"], holdout_days=182, make_model=BetaGeoModel,
        amount_col="dollars",
    )
    table = result.to_pandas()
    assert list(table.origin) == [dt.date(1997, 7, 1), dt.date(1997, 10, 1)]
    assert (table.mae_model < table.mae_last_period).all()
    assert table.converged.all()


def test_shared_purchase_days_give_the_same_summaries_warnings_and_tracking(setup) -> None:
    # the run's CLV stage groups the lines by customer and day once and hands the cached days
    # to every summary and to the tracking curves: exactly the results of reading the lines
    from segflow.models import purchase_days
    from segflow.models._validation import tracking_curves

    tx, summary, _frame, model, _spend = setup
    days = purchase_days(tx, end=None, amount_col="dollars").cache()
    try:
        for kwargs in ({"calibration_end": "1997-10-01"},
                       {"calibration_end": "1997-06-01", "observation_end": "1998-01-01"}):
            with warnings.catch_warnings(record=True) as direct:
                warnings.simplefilter("always")
                a = btyd_summary(tx, amount_col="dollars", **kwargs).execute()
            with warnings.catch_warnings(record=True) as shared:
                warnings.simplefilter("always")
                b = btyd_summary(tx, amount_col="dollars", days=days, **kwargs).execute()
            assert [str(w.message) for w in direct] == [str(w.message) for w in shared]
            assert len(direct) >= 1  # customers acquired after the calibration end are counted
            a, b = (f.sort_values("customer_id", ignore_index=True) for f in (a, b))
            assert len(a) > 1000
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        plain = tracking_curves(tx, summary, model, amount_col="dollars")
        from_days = tracking_curves(tx, summary, model, amount_col="dollars", days=days)
        assert plain["actual"].sum() > 0
        pd.testing.assert_frame_equal(plain, from_days, check_exact=True)
    finally:
        days.release()
