"""Predictions per distinct triple, joined back to every customer in the engine; CLV; scores.

The count models' predictions depend on a customer only through (x, t_x, T), so they are
computed once per distinct triple (NumPy/SciPy) and joined back to the per-customer summary in
the engine. The Gamma-Gamma expected spend is a closed form in (x, m) and is computed in the
engine directly.

Discounted CLV over a horizon H (time units of the summary):

    CLV = margin * E(spend) * sum_k [E X(t_k) - E X(t_{k-1})] / (1 + d)^(t_k / units_per_year)

with steps t_k of one month (``steps_per_year = 12``) up to H, the expected purchases of step k
discounted at the step's end (the convention of Fader, Hardie & Lee 2005, JMR, eq. 2 in
discrete form), and ``d`` the annual discount rate.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from segflow.errors import ArgumentError, SegflowError
from segflow.models._btyd_base import BTYDModel
from segflow.models._btyd_input import Prediction, check_horizon, pandas_aware
from segflow.models._gammagamma import ConstantSpendModel, GammaGammaModel
from segflow.models._summary import compress, unit_days

#: Short model names used in the store's customer_scores.model column and in the CLI.
MODEL_NAMES = {
    "BetaGeoModel": "bgnbd",
    "ModifiedBetaGeoModel": "mbgnbd",
    "ParetoNBDModel": "pnbd",
    "BetaGeoBetaBinomModel": "bgbb",
}


def _check_scoring(function: str, horizon: Any, annual_discount_rate: Any,
                   steps_per_year: Any = 12) -> tuple[float, float]:
    """The horizon (one finite number >= 0) and the annual discount rate (one finite number
    >= 0, as ``clv score --discount-rate``) of a scoring function as floats, else an
    ``ArgumentError`` (a ``ValueError``) naming them: an infinite horizon raised Python's
    OverflowError from the monthly steps, a negative one scored negative purchases, several
    horizons a TypeError (several rates were taken one per customer), a number written as
    text a TypeError; ``steps_per_year`` a whole number >= 1 (0 divided by zero)."""
    for name, value in (("horizon", horizon), ("annual_discount_rate", annual_discount_rate)):
        if np.ndim(value) != 0:
            raise ArgumentError(f"{function}: argument {name!r}: expected one number; got "
                                f"{np.size(value)} values")
    if isinstance(steps_per_year, bool) or not isinstance(steps_per_year, numbers.Integral) or steps_per_year < 1:
        raise ArgumentError(f"{function}: argument 'steps_per_year': expected a whole number >= 1; "
                            f"got {steps_per_year!r}")
    return (float(check_horizon(function, horizon, name="horizon")),
            float(check_horizon(function, annual_discount_rate, name="annual_discount_rate")))


@pandas_aware("x", "t_x", "T")
def discounted_purchases(
    model: BTYDModel,
    x: Any,
    t_x: Any,
    T: Any,
    *,
    horizon: float,
    time_unit: str = "W",
    annual_discount_rate: float = 0.1,
    steps_per_year: int = 12,
) -> Prediction:
    """Discounted expected purchases in (T, T + horizon] per triple (see module notes).

    ``x``, ``t_x``, ``T`` as the model's ``expected_purchases`` takes them: pandas Series give
    a Series with their index (named ``discounted_purchases``), numbers a float, arrays an
    array."""
    horizon, annual_discount_rate = _check_scoring("discounted_purchases", horizon, annual_discount_rate,
                                                   steps_per_year)
    units_per_year = 365.25 / unit_days(time_unit)
    n_steps = max(1, math.ceil(horizon / units_per_year * steps_per_year - 1e-9))
    ends = np.minimum(np.arange(1, n_steps + 1) * units_per_year / steps_per_year, horizon)
    total: Any = 0.0
    previous: Any = 0.0
    for end in ends:  # loop over time steps, vectorised over triples
        cumulative = model.expected_purchases(end, x, t_x, T)
        total = total + (cumulative - previous) / (1 + annual_discount_rate) ** (end / units_per_year)
        previous = cumulative
    return np.asarray(total, dtype=float)


def predict_triples(
    model: BTYDModel,
    triples: pd.DataFrame,
    *,
    horizon: float,
    time_unit: str = "W",
    annual_discount_rate: float = 0.1,
) -> pd.DataFrame:
    """Count-model predictions for distinct triples (columns x, t_x, T).

    Returns the triples with ``p_alive``, ``expected_purchases`` (next ``horizon`` time units),
    ``p_no_purchase`` (none in the next ``horizon``) and ``discounted_purchases``.
    """
    horizon, annual_discount_rate = _check_scoring("predict_triples", horizon, annual_discount_rate)
    x, t_x, T = (triples[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    out = triples[["x", "t_x", "T"]].copy()
    with np.errstate(all="ignore"):
        out["p_alive"] = model.p_alive(x, t_x, T)
        # + 0.0: a horizon of 0 gave -0.0 (written "-0"), a sign without a meaning
        out["expected_purchases"] = model.expected_purchases(horizon, x, t_x, T) + 0.0
        out["p_no_purchase"] = model.p_no_purchase(horizon, x, t_x, T)
        out["discounted_purchases"] = discounted_purchases(
            model, x, t_x, T, horizon=horizon, time_unit=time_unit,
            annual_discount_rate=annual_discount_rate,
        )
    bad = ~np.isfinite(out[["p_alive", "expected_purchases", "p_no_purchase"]].to_numpy())
    if bad.any():
        row = out.iloc[int(np.flatnonzero(bad.any(axis=1))[0])]
        raise SegflowError(
            f"prediction is not finite for x={row.x:g}, t_x={row.t_x:g}, T={row['T']:g}; "
            "the fitted parameters may be at a boundary"
        )
    return out


def score_customers(
    summary: ir.Table,
    model: BTYDModel,
    *,
    horizon: float,
    time_unit: str = "W",
    spend_model: GammaGammaModel | ConstantSpendModel | None = None,
    margin: float = 1.0,
    annual_discount_rate: float = 0.1,
) -> ir.Table:
    """Per-customer predictions as an Ibis expression on the summary's engine.

    Parameters
    ----------
    summary : ibis.Table
        From :func:`segflow.models.btyd_summary` (``customer_id, x, t_x, T, monetary_value``).
    model : fitted count model
    horizon : float
        Prediction horizon in ``time_unit`` (e.g. 52 weeks).
    spend_model : fitted GammaGammaModel or ConstantSpendModel, optional
        Adds ``expected_spend`` and ``clv`` (margin x expected spend x discounted purchases).
        With a Gamma-Gamma ``q <= 1`` both are null for customers whose expected spend is
        infinite (those without a repeat purchase); the count models' scores are written
        for everybody.
    margin : float, default=1.0
        Profit margin applied to spend (1.0 = revenue CLV).
    annual_discount_rate : float, default=0.1

    Returns
    -------
    ibis.Table
        ``customer_id, x, t_x, T, p_alive, expected_purchases, p_no_purchase,
        discounted_purchases`` (+ ``expected_spend, clv``).
    """
    # (before the engine's work)
    horizon, annual_discount_rate = _check_scoring("score_customers", horizon, annual_discount_rate)
    triples = compress(summary)
    preds = predict_triples(
        model, triples, horizon=horizon, time_unit=time_unit,
        annual_discount_rate=annual_discount_rate,
    ).drop(columns=["count"], errors="ignore")
    preds["x"] = preds["x"].astype("int64")
    lookup = ibis.memtable(pa.Table.from_pandas(preds, preserve_index=False))
    joined = summary.inner_join(lookup, ["x", "t_x", "T"])
    cols = ["customer_id", "x", "t_x", "T", "p_alive", "expected_purchases", "p_no_purchase",
            "discounted_purchases"]
    out = joined.select(*cols, "monetary_value")
    if spend_model is None:
        return out.drop("monetary_value")
    # FH (2013) eq. (5), in the engine: customers without a positive repeat spend get the
    # population mean p*gamma/(q-1); where that is infinite (q <= 1) expected_spend and clv
    # are null (a constant spend model gives its value to everybody)
    out = out.mutate(expected_spend=spend_model.spend_expression(out.x, out.monetary_value))
    out = out.mutate(clv=margin * out.expected_spend * out.discounted_purchases)
    return out.drop("monetary_value")


SCORE_COLUMNS = ("p_alive", "expected_purchases", "p_no_purchase", "expected_spend", "clv")


def scores_long(scores: ir.Table, *, snapshot_date: dt.date, model: str, run_id: str) -> ir.Table:
    """Per-customer scores in the long form of ``customer_scores`` (an expression on the
    scores' engine): ``snapshot_date, customer_id, model, score, value, run_id``, one row per
    customer and score name of :data:`SCORE_COLUMNS`."""
    present = [c for c in SCORE_COLUMNS if c in scores.columns]
    long = scores.select("customer_id", *present).pivot_longer(
        present, names_to="score", values_to="value"
    )
    return long.select(
        snapshot_date=ibis.literal(snapshot_date, type="date"),
        customer_id=long.customer_id,
        model=ibis.literal(model),
        score=long.score,
        value=long.value.cast("float64"),
        run_id=ibis.literal(run_id),
    )


def write_scores(
    store: Any,
    scores: ir.Table,
    *,
    snapshot_date: dt.date,
    model: str,
    run_id: str,
) -> int:
    """Write per-customer scores into ``customer_scores`` (long format), replacing the same
    snapshot and model. One row per customer and score name (see :data:`SCORE_COLUMNS`).
    Returns rows written.

    When ``scores`` is an expression on the store's own DuckDB connection (``segflow run``),
    the rows go from the engine into the table (the per-customer scores materialised there
    once, then one INSERT ... SELECT makes them long); otherwise they arrive as Arrow."""
    con_of_store = getattr(store, "con", None)
    try:
        same = con_of_store is not None and scores._find_backend() is con_of_store
    except Exception:  # noqa: BLE001 - an expression of several backends: the Arrow path
        same = False
    if same:
        # the per-customer scores materialised once (their inputs include in-memory tables
        # the SQL cannot name), then turned long inside the INSERT
        cached = scores.cache()
        try:
            long = scores_long(cached, snapshot_date=snapshot_date, model=model, run_id=run_id)
            cols = ", ".join(f'"{c}"' for c in long.columns)
            with store.transaction() as con:
                con.execute("DELETE FROM customer_scores WHERE snapshot_date = ? AND model = ?",
                            [snapshot_date, model])
                return int(con.execute(f"INSERT INTO customer_scores ({cols}) SELECT {cols} "
                                       f"FROM ({con_of_store.compile(long)})").fetchone()[0])
        finally:
            cached.release()
    long = scores_long(scores, snapshot_date=snapshot_date, model=model, run_id=run_id)
    rows = long.to_pyarrow()
    with store.transaction() as con:
        con.execute(
            "DELETE FROM customer_scores WHERE snapshot_date = ? AND model = ?",
            [snapshot_date, model],
        )
        return store.append("customer_scores", rows, con=con)
