"""Validation of the BTYD models on a calibration/holdout split, and a rolling-origin backtest.

What is compared (all per customer, on the holdout period that follows the calibration end):

* **Errors**: mean absolute error and root mean squared error of holdout purchases, for the
  model and two naive baselines: ``last_period`` (the purchases of the last calibration window
  as long as the holdout, repeated) and ``ticket_x_frequency`` (the customer's repeat purchase
  rate x/T times the holdout length; for spend, times the average ticket).
* **Conditional expectations**: mean actual vs predicted holdout purchases by calibration
  frequency x (0, 1, ..., 7+), the plot of Fader, Hardie & Lee (2005, Fig. 4).
* **Tracking curves**: repeat purchases per time unit and cumulated, actual vs the model's
  expectation summed over the acquisition cohorts (FHL 2005, Figs. 2-3).
* **Decile calibration**: customers ranked by predicted value (ties broken by customer id) in
  ten equal groups; per decile the mean predicted and actual holdout spend (CLV check) and the
  mean P(alive), the predicted P(any purchase) and the actual share purchasing.

Table work runs in the engine (Ibis); only the small result tables reach pandas.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from segflow._result import TableResult, json_records
from segflow.errors import SegflowError
from segflow.models._btyd_base import BTYDModel
from segflow.models._gammagamma import ConstantSpendModel, GammaGammaModel
from segflow.models._scoring import score_customers
from segflow.models._summary import btyd_summary, compress, purchase_days, unit_days

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Calibration frequencies at or above this are pooled in the conditional-expectation table.
FREQUENCY_CAP = 7


class HoldoutValidation(TableResult):
    """Holdout validation of a fitted count model (and optionally a spend model).

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per predictor (``model``, ``last_period``, ``ticket_x_frequency``):
        MAE and RMSE of holdout purchases (and of holdout spend with a spend model), totals.
    by_frequency : pandas.DataFrame
        Conditional expectations by calibration frequency.
    deciles : pandas.DataFrame
        Decile calibration of predicted holdout value and P(alive).
    tracking : pandas.DataFrame or None
        Weekly and cumulative repeat purchases, actual vs model (when transactions are given).
    """

    def __init__(
        self,
        metrics: pd.DataFrame,
        by_frequency: pd.DataFrame,
        deciles: pd.DataFrame,
        tracking: pd.DataFrame | None = None,
    ) -> None:
        self.metrics = metrics
        self.by_frequency = by_frequency
        self.deciles = deciles
        self.tracking = tracking

    def to_pandas(self) -> pd.DataFrame:
        return self.metrics

    def to_dict(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
            if frame is None:
                return []
            return json_records(frame)

        return {
            "data": records(self.metrics),
            "count": len(self.metrics),
            "by_frequency": records(self.by_frequency),
            "deciles": records(self.deciles),
            "tracking": records(self.tracking),
        }

    def figure(self) -> go.Figure:
        from plotly.subplots import make_subplots

        fig = make_subplots(
            rows=1,
            cols=3,
            subplot_titles=(
                "Holdout purchases by calibration frequency",
                "Cumulative repeat purchases",
                "Decile calibration (holdout purchases)",
            ),
        )
        bf = self.by_frequency
        fig.add_scatter(x=bf.x_group, y=bf.actual, name="actual", mode="lines+markers", row=1, col=1)
        fig.add_scatter(x=bf.x_group, y=bf.model, name="model", mode="lines+markers", row=1, col=1)
        if self.tracking is not None:
            tr = self.tracking
            fig.add_scatter(x=tr.period, y=tr.actual_cumulative, name="actual (cum.)", row=1, col=2)
            fig.add_scatter(x=tr.period, y=tr.model_cumulative, name="model (cum.)", row=1, col=2)
        dc = self.deciles
        fig.add_bar(x=dc.decile, y=dc.actual_purchases, name="actual", row=1, col=3)
        fig.add_bar(x=dc.decile, y=dc.predicted_purchases, name="predicted", row=1, col=3)
        fig.update_layout(title="BTYD holdout validation", barmode="group")
        return fig

    def __repr__(self) -> str:
        row = self.metrics.set_index("predictor").loc["model"]
        return (
            f"HoldoutValidation(customers={int(row.customers)}, MAE={row.mae_purchases:.3f}, "
            f"RMSE={row.rmse_purchases:.3f})"
        )


def validate_holdout(
    summary: ir.Table,
    model: BTYDModel,
    *,
    time_unit: str = "W",
    spend_model: GammaGammaModel | ConstantSpendModel | None = None,
    transactions: ir.Table | None = None,
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
    days: ir.Table | None = None,
    repeat_days: ir.Table | None = None,
) -> HoldoutValidation:
    """Compare a fitted model's holdout predictions with the actual purchases.

    Parameters
    ----------
    summary : ibis.Table
        :func:`btyd_summary` *with* ``observation_end`` (holdout columns present).
    model : fitted count model (BG/NBD, MBG/NBD or Pareto/NBD), fitted on this calibration.
    time_unit : str
        The summary's time unit.
    spend_model : fitted GammaGammaModel or ConstantSpendModel, optional
        Adds spend errors and the CLV decile check (holdout spend, undiscounted).
    transactions : ibis.Table, optional
        The transaction log, for the tracking curves.
    days : ibis.Table, optional
        :func:`segflow.models.purchase_days` of ``transactions`` (``end=None``), when the
        caller has them: the tracking curves read them instead of the lines.
    repeat_days : ibis.Table, optional
        Repeat purchase days per (``day``, ``first_buy``) with their number ``n``
        (:mod:`segflow.models._btyd_state`), read by the tracking curves instead of both.
    """
    if "x_holdout" not in summary.columns:
        raise SegflowError("validate_holdout needs a summary built with observation_end")
    duration = float(summary.select("duration_holdout").limit(1).execute().iloc[0, 0])
    scored = score_customers(
        summary, model, horizon=duration, time_unit=time_unit, spend_model=spend_model,
        annual_discount_rate=0.0,
    )
    base = summary.select(
        "customer_id", "x_holdout", "holdout_spend", "x_last_period", "last_period_spend",
        "monetary_value",
    )
    s = scored.inner_join(base, "customer_id")
    rate = ibis.ifelse(s["T"] > 0, s.x.cast("float64") / s["T"], 0.0)
    ticket = ibis.ifelse(s.x > 0, s.monetary_value.fill_null(0.0), 0.0)
    s = s.mutate(
        pred_model=s.expected_purchases,
        pred_last_period=s.x_last_period.cast("float64"),
        pred_ticket_x_frequency=rate * duration,
        spend_model=(s.expected_purchases * s.expected_spend) if spend_model else ibis.null("float64"),
        spend_last_period=s.last_period_spend,
        spend_ticket_x_frequency=rate * duration * ticket,
    )
    s = s.cache() if hasattr(s, "cache") else s
    metrics = _metrics(s, with_spend=spend_model is not None)
    by_freq = _by_frequency(s)
    deciles = _deciles(s, with_spend=spend_model is not None)
    tracking = None
    if transactions is not None:
        tracking = tracking_curves(
            transactions, summary, model, time_unit=time_unit, customer_col=customer_col,
            ts_col=ts_col, amount_col=amount_col, days=days, repeat_days=repeat_days,
        )
    return HoldoutValidation(metrics, by_freq, deciles, tracking)


_PREDICTORS = ("model", "last_period", "ticket_x_frequency")


def _metrics(s: ir.Table, *, with_spend: bool) -> pd.DataFrame:
    aggs: dict[str, Any] = {"customers": s.count(), "actual_total": s.x_holdout.sum()}
    for p in _PREDICTORS:
        err = s[f"pred_{p}"] - s.x_holdout.cast("float64")
        aggs[f"{p}__mae"] = err.abs().mean()
        aggs[f"{p}__mse"] = (err * err).mean()
        aggs[f"{p}__total"] = s[f"pred_{p}"].sum()
        if with_spend:
            serr = s[f"spend_{p}"] - s.holdout_spend
            aggs[f"{p}__smae"] = serr.abs().mean()
            aggs[f"{p}__smse"] = (serr * serr).mean()
    row = s.aggregate(**aggs).execute().iloc[0]
    rows = []
    for p in _PREDICTORS:
        item = {
            "predictor": p,
            "customers": int(row["customers"]),
            "mae_purchases": float(row[f"{p}__mae"]),
            "rmse_purchases": float(np.sqrt(row[f"{p}__mse"])),
            "predicted_total": float(row[f"{p}__total"]),
            "actual_total": float(row["actual_total"]),
        }
        if with_spend:
            item["mae_spend"] = float(row[f"{p}__smae"])
            item["rmse_spend"] = float(np.sqrt(row[f"{p}__smse"]))
        rows.append(item)
    return pd.DataFrame(rows)


def _by_frequency(s: ir.Table) -> pd.DataFrame:
    g = s.mutate(x_group=ibis.ifelse(s.x >= FREQUENCY_CAP, FREQUENCY_CAP, s.x))
    out = (
        g.group_by("x_group")
        .aggregate(
            customers=g.count(),
            actual=g.x_holdout.mean(),
            model=g.pred_model.mean(),
            last_period=g.pred_last_period.mean(),
            ticket_x_frequency=g.pred_ticket_x_frequency.mean(),
        )
        .order_by("x_group")
        .execute()
    )
    out["x_group"] = [f"{v}+" if v == FREQUENCY_CAP else str(v) for v in out.x_group]
    return out


def _deciles(s: ir.Table, *, with_spend: bool) -> pd.DataFrame:
    key = s.spend_model if with_spend else s.pred_model
    w = ibis.window(order_by=[key.desc(), s.customer_id])
    ranked = s.mutate(decile=ibis.ntile(10).over(w) + 1)
    aggs: dict[str, Any] = {
        "customers": ranked.count(),
        "predicted_purchases": ranked.pred_model.mean(),
        "actual_purchases": ranked.x_holdout.mean(),
        "p_alive": ranked.p_alive.mean(),
        "predicted_any_purchase": (1 - ranked.p_no_purchase).mean(),
        "actual_any_purchase": (ranked.x_holdout > 0).cast("float64").mean(),
    }
    if with_spend:
        aggs["predicted_spend"] = ranked.spend_model.mean()
        aggs["actual_spend"] = ranked.holdout_spend.mean()
    return ranked.group_by("decile").aggregate(**aggs).order_by("decile").execute()


def tracking_curves(
    transactions: ir.Table,
    summary: ir.Table,
    model: BTYDModel,
    *,
    time_unit: str = "W",
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
    days: ir.Table | None = None,
    repeat_days: ir.Table | None = None,
) -> pd.DataFrame:
    """Repeat purchases per time unit since the first acquisition, actual vs expected.

    The model's expectation at period end e is sum over acquisition days c of
    n_c * E[X((e - c) / unit)] (E[X(t)]: repeat purchases of a new customer by t).
    Only customers in the summary (acquired before the calibration end) are counted.
    ``days``: :func:`segflow.models.purchase_days` of ``transactions`` with ``end=None``,
    when the caller has them (read instead of the lines; same result). ``repeat_days``:
    repeat purchase days per (``day``, ``first_buy``) with their number ``n``, of at least
    every day before the tracking's end (:mod:`segflow.models._btyd_state`), read instead of
    both: the summary holds every customer whose first purchase is on or before its latest
    ``first_purchase`` (a :func:`btyd_summary`), so those rows are its repeat purchases.
    """
    unit = unit_days(time_unit)
    end = None
    if "duration_holdout" in summary.columns:
        row = summary.aggregate(
            first=summary.first_purchase.min(), T=summary["T"].max(),
            h=summary.duration_holdout.max(), last=summary.first_purchase.max(),
        ).execute().iloc[0]
    else:
        row = summary.aggregate(
            first=summary.first_purchase.min(), T=summary["T"].max(), h=ibis.literal(0.0),
            last=summary.first_purchase.max(),
        ).execute().iloc[0]
    start = pd.Timestamp(row["first"]).date()
    total_days = int(round((float(row["T"]) + float(row["h"])) * unit)) + 1
    end = start + dt.timedelta(days=total_days)
    if repeat_days is not None:
        last = pd.Timestamp(row["last"]).date()
        rep = repeat_days.filter((repeat_days.first_buy <= last) & (repeat_days.day < end))
        count = "n"
    else:
        if days is None:
            days = purchase_days(transactions, end=end, customer_col=customer_col, ts_col=ts_col,
                                 amount_col=amount_col)
        else:
            days = days.filter(days.day < end)
        days = days.filter(days.purchase)
        members = summary.select("customer_id", "first_purchase")
        rep = days.inner_join(members, "customer_id")
        rep = rep.filter(rep.day > rep.first_purchase)
        count = None
    since = rep.day.delta(ibis.literal(start), unit="day").cast("float64")
    period = (since / unit).floor().cast("int64")
    rep = rep.mutate(period=period)
    actual = rep.group_by("period").aggregate(
        actual=rep.count() if count is None else rep[count].sum()).execute()
    # sorted: the expectation sums over cohorts in one order (equal inputs, equal floats)
    cohorts = (summary.group_by("first_purchase").aggregate(n=summary.count())
               .order_by("first_purchase").execute())
    offset = np.array([(pd.Timestamp(d).date() - start).days for d in cohorts.first_purchase]) / unit
    n_periods = int(np.ceil(total_days / unit))
    ends = np.arange(1, n_periods + 1, dtype=float)
    age = np.clip(ends[:, None] - offset[None, :], 0.0, None)
    expected = (model.expected_purchases_new(age) * cohorts.n.to_numpy()[None, :]).sum(axis=1)
    out = pd.DataFrame({"period": np.arange(n_periods)})
    out = out.merge(actual, on="period", how="left").fillna({"actual": 0})
    out["model_cumulative"] = expected
    out["actual_cumulative"] = out.actual.cumsum()
    out["model"] = np.diff(np.concatenate([[0.0], expected]))
    return out[["period", "actual", "model", "actual_cumulative", "model_cumulative"]]


class Backtest(TableResult):
    """Rolling-origin backtest: one row per calibration end (origin)."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table

    def to_pandas(self) -> pd.DataFrame:
        return self.table

    def figure(self) -> go.Figure:
        import plotly.graph_objects as go

        fig = go.Figure()
        for p in _PREDICTORS:
            fig.add_scatter(x=self.table.origin, y=self.table[f"mae_{p}"], name=p, mode="lines+markers")
        fig.update_layout(title="Rolling-origin backtest: MAE of holdout purchases",
                          xaxis_title="calibration end", yaxis_title="MAE per customer")
        return fig

    def __repr__(self) -> str:
        return f"Backtest(origins={len(self.table)})"


def backtest(
    transactions: ir.Table,
    origins: Sequence[dt.date | str],
    *,
    holdout_days: int,
    make_model: Callable[[], BTYDModel],
    time_unit: str = "W",
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
) -> Backtest:
    """Fit at each origin (calibration end) and score the following ``holdout_days``.

    Each origin uses only rows before it for the fit (snapshot semantics), and the
    ``holdout_days`` after it for the errors.
    """
    rows = []
    for origin in origins:
        cal_end = pd.Timestamp(origin).date()
        summary = btyd_summary(
            transactions, calibration_end=cal_end,
            observation_end=cal_end + dt.timedelta(days=holdout_days), time_unit=time_unit,
            customer_col=customer_col, ts_col=ts_col, amount_col=amount_col, warn=False,
        )
        summary = summary.cache() if hasattr(summary, "cache") else summary
        model = make_model().fit(compress(summary))
        result = validate_holdout(summary, model, time_unit=time_unit)
        m = result.metrics.set_index("predictor")
        item: dict[str, Any] = {
            "origin": cal_end,
            "customers": int(m.loc["model", "customers"]),
            "actual_total": m.loc["model", "actual_total"],
            "log_likelihood": model.log_likelihood_,
            "converged": model.converged_,
        }
        for p in _PREDICTORS:
            item[f"mae_{p}"] = m.loc[p, "mae_purchases"]
            item[f"rmse_{p}"] = m.loc[p, "rmse_purchases"]
            item[f"total_{p}"] = m.loc[p, "predicted_total"]
        rows.append(item)
    return Backtest(pd.DataFrame(rows))
