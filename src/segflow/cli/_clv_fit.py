"""Fitting behind ``segflow clv fit|score``: dates at the interface, the fit, its report.

The options take *inclusive* dates (``--calibration-end``, ``--holdout-end``: the last day
of the period, as lifetimes and the papers state them) or the *snapshot* (``--snapshot``:
the first day after the calibration); :func:`snapshot_of` converts them once, and
everything inside uses segflow's snapshot rule (rows before the snapshot).
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from typing import Any

from segflow.cli._common import print_labelled, stdout
from segflow.errors import InputError, SegflowError

MODELS = ("bgnbd", "mbgnbd", "pnbd", "bgbb")
SPEND_MODELS = ("gamma-gamma", "constant", "none")
UNITS = {"day": "D", "week": "W", "month": "M"}
#: The default CLV horizon of ``clv score``: one year in each unit's usual count (365 days;
#: 52 weeks = 364 days, as the pipeline's stored "52-week" CLV; 12 months = 365.25 days,
#: segflow's month being 365.25 / 12 days), so the CLV does not change with --time-unit.
DEFAULT_HORIZON = {"day": 365.0, "week": 52.0, "month": 12.0}
#: The longest horizon ``clv score`` takes, in years of 365.25 days.
MAX_HORIZON_YEARS = 100


def _model(name: str, penalizer: float) -> Any:
    from segflow.models import (
        BetaGeoBetaBinomModel,
        BetaGeoModel,
        ModifiedBetaGeoModel,
        ParetoNBDModel,
    )

    classes = {"bgnbd": BetaGeoModel, "mbgnbd": ModifiedBetaGeoModel, "pnbd": ParetoNBDModel,
               "bgbb": BetaGeoBetaBinomModel}
    if name not in classes:
        raise InputError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return classes[name](penalizer=penalizer)


def unit_code(time_unit: str) -> str:
    if time_unit not in UNITS:
        raise InputError(f"unknown time unit {time_unit!r}; expected day, week or month")
    return UNITS[time_unit]


def horizon_of(horizon: float | None, time_unit: str) -> float:
    """The CLV horizon in ``time_unit`` units: ``--horizon`` as given, else one year
    (:data:`DEFAULT_HORIZON`). A usage error (one line, exit 2) for a horizon that is not a
    number from 0 to :data:`MAX_HORIZON_YEARS` years: 1e308 weeks stopped in NumPy, and each
    monthly step of a long horizon costs a model evaluation per customer."""
    import typer

    from segflow.models._summary import unit_days

    if horizon is None:
        return DEFAULT_HORIZON[time_unit]
    most = MAX_HORIZON_YEARS * 365.25 / unit_days(unit_code(time_unit))
    if not 0 <= horizon <= most:
        raise typer.BadParameter(
            f"{horizon:g} {time_unit}s is more than {MAX_HORIZON_YEARS} years ({most:,.0f} "
            f"{time_unit}s)" if horizon > most else f"{horizon:g} is not a number of {time_unit}s",
            param_hint="'--horizon'")
    return horizon


def clv_settings(horizon: float, time_unit: str, margin: float,
                 discount_rate: float) -> dict[str, Any]:
    """The settings of the scores, for the report (``scoring``): the horizon of expected
    purchases, P(no purchase) and CLV in ``time_unit`` units and in days, and the CLV's
    annual discount rate and margin (a share of spend)."""
    from segflow.models._summary import unit_days

    return {"horizon": horizon, "horizon_unit": time_unit,
            "horizon_days": horizon * unit_days(unit_code(time_unit)),
            "annual_discount_rate": discount_rate, "margin": margin}


def clv_line(settings: dict[str, Any]) -> str:
    """The scoring settings as one line of text: ``horizon 52 weeks (364 days); clv:
    annual discount rate 0.1 (10%), margin 1 (revenue)``."""
    h, unit = settings["horizon"], settings["horizon_unit"]
    margin, rate = settings["margin"], settings["annual_discount_rate"]
    days = "" if unit == "day" else f" ({settings['horizon_days']:,.6g} days)"
    return (f"horizon {h:g} {unit}{'' if h == 1 else 's'}{days}; "
            f"clv: annual discount rate {rate:g} ({rate * 100:g}%), margin {margin:g}"
            f"{' (revenue)' if margin == 1 else ''}")


def snapshot_of(calibration_end: dt.date | None, snapshot: dt.date | None) -> dt.date:
    """The snapshot date (first day *after* the calibration) from the user's options.

    ``--calibration-end`` names the last calibration day (inclusive, as lifetimes'
    ``calibration_period_end`` and the papers' "calibration to 1997-09-30");
    ``--snapshot`` names the day after it (segflow's snapshot rule: rows before it).
    Exactly one of the two is given.
    """
    if (calibration_end is None) == (snapshot is None):
        which = "not both" if calibration_end is not None else "one of them is needed"
        raise InputError(
            "give either --calibration-end DATE (the last calibration day, included) or "
            f"--snapshot DATE (the day after it: rows before it are used), {which}"
        )
    return calibration_end + dt.timedelta(days=1) if snapshot is None else snapshot


def holdout_snapshot(last: dt.date | None, snapshot: dt.date) -> dt.date | None:
    """The exclusive end of the holdout from ``--holdout-end`` (its last day, inclusive)."""
    if last is None:
        return None
    if last < snapshot:
        raise InputError(
            f"--holdout-end {last} must be on or after the first holdout day {snapshot} "
            f"(the day after the calibration end {snapshot - dt.timedelta(days=1)})"
        )
    return last + dt.timedelta(days=1)


def _window(first: dt.date | None, end: dt.date, time_unit: str) -> dict[str, Any]:
    """First and last day of a period ending before ``end``, its days and length in units."""
    from segflow.models._summary import unit_days

    last = end - dt.timedelta(days=1)
    days = None if first is None else (end - first).days
    return {
        "first_day": first,
        "last_day": last,
        "days": days,
        "length": None if days is None else days / unit_days(unit_code(time_unit)),
        "unit": time_unit,
    }


def _purchase_span(transactions: Any, snapshot: dt.date,
                   cols: dict[str, Any]) -> tuple[dt.date | None, dt.date | None, dt.date | None]:
    """The first and the last day with a purchase before the snapshot, and the first
    purchase day of all (one query): the calibration's first day, what
    :func:`_after_the_data` compares its end with, and what :func:`_refuse_no_history`
    names."""
    import pandas as pd

    from segflow.models import purchase_days

    days = purchase_days(transactions, end=None, **cols)
    before = days.day < snapshot
    row = days.aggregate(first=days.day.min(where=before), last=days.day.max(where=before),
                         ever=days.day.min(where=days.purchase)).execute().iloc[0]
    return tuple(None if v is None or pd.isna(v) else pd.Timestamp(v).date()  # type: ignore[return-value]
                 for v in (row["first"], row["last"], row["ever"]))


def _refuse_no_history(first_purchase: dt.date | None, snapshot: dt.date, model_name: str) -> None:
    """An InputError when the calibration (the days before ``snapshot``) holds no customer
    the model can learn from: no purchase at all, the first purchase after the calibration
    end, or on its last day (every customer then has T = 0 and tells a continuous-time model
    nothing). The model said only "the summary holds no customers"."""
    end = snapshot - dt.timedelta(days=1)
    dates = f"the calibration end {end} (the day before the snapshot {snapshot})"
    later = "give a later --calibration-end (or --snapshot)"
    if first_purchase is None:
        raise InputError("no purchase to fit on: no row is a purchase (a line of a customer, with a "
                         "date and an amount of 0 or more)")
    if first_purchase > end:
        raise InputError(f"no purchase to fit on: the first purchase is on {first_purchase}, after "
                         f"{dates}; {later}")
    if first_purchase == end and model_name != "bgbb":
        raise InputError(f"no purchase to fit on: the first purchase is on {first_purchase}, the calibration "
                         f"end (the day before the snapshot {snapshot}), so every customer in the "
                         "calibration has T = 0 (a first purchase on its last day), which tells the model "
                         f"nothing; {later}")


#: Days from the last purchase day to the calibration's end from which the fit is warned
#: about: beyond a month (a snapshot on the period boundary after the data is at most that).
AFTER_THE_DATA_DAYS = 31


def _after_the_data(last: dt.date | None, snapshot: dt.date) -> list[str]:
    """A warning when the calibration (up to the day before ``snapshot``) ends more than
    :data:`AFTER_THE_DATA_DAYS` after ``last``, the last purchase day: the BTYD models read
    those days as days without a purchase (no data is not no purchase), so P(alive) and
    expected purchases come out too low."""
    if last is None:
        return []
    gap = (snapshot - last).days - 1  # days of the calibration after the last purchase day
    if gap <= AFTER_THE_DATA_DAYS:
        return []
    return [f"the calibration ends {snapshot - dt.timedelta(days=1)}, {gap} days after the last "
            f"purchase day ({last}): the model reads those days as days without purchases, so "
            "P(alive) and expected purchases come out too low (is the snapshot after the data?)"]


def _left_out(transactions: Any, customer_col: str, ts_col: str,
              amount_col: str | None = None, source: str | None = None) -> list[str]:
    """Notes counting the rows no customer's history holds: without a customer id (empty or
    blank once trimmed: anonymous lines) or without a date; and the rows of a customer and
    date without an amount (an empty cell), which are no purchase (the summary's warning
    counts their days as return-only days). For a file (``source``, its name) each note
    names the file, the first such rows (1: the first data row) and the column:
    ``file tx.csv, rows 4, 9 and 12, column 'amount': 3 rows have no amount ...``; a
    store's table has no row numbers to name."""
    if customer_col not in transactions.columns or ts_col not in transactions.columns:
        return []  # the summary names the missing column
    dated = transactions[customer_col].notnull() & transactions[ts_col].notnull()
    left_out = ("is left out", "are left out")
    # (rows, their column, what they lack, what becomes of one row / of several)
    kinds = [(transactions[customer_col].isnull(), customer_col, "no customer id", left_out),
             (transactions[ts_col].isnull(), ts_col, "no date", left_out)]
    if amount_col is not None and amount_col in transactions.columns:
        kinds.append((dated & transactions[amount_col].isnull(), amount_col, f"no {amount_col}",
                      ("is no purchase (not a return either)",
                       "are no purchases (not a return either)")))
    counts = transactions.aggregate(
        **{f"k{i}": kind[0].sum() for i, kind in enumerate(kinds)}).execute().iloc[0].fillna(0)
    found = {i: int(counts[f"k{i}"]) for i in range(len(kinds)) if int(counts[f"k{i}"])}
    first: dict[str, list[int]] = {}
    if source is not None and found:  # one more query, only when such rows exist
        from segflow._rows import first_rows

        first = first_rows(transactions, {str(i): kinds[i][0] for i in found})
    notes = []
    for i, n in found.items():
        _, column, what, fate = kinds[i]
        text = f"{n:,} {'row has' if n == 1 else 'rows have'} {what} and {fate[n != 1]}"
        if source is not None:
            from segflow.errors import where

            text = f"{where(source, first[str(i)], column, rows_in_all=n)}: {text}"
        notes.append(text)
    return notes


def fit_clv(
    transactions: Any,
    *,
    snapshot: dt.date,
    observation_end: dt.date | None,
    time_unit: str,
    model_name: str,
    spend_model: str = "gamma-gamma",
    order_value: float | None = None,
    penalizer: float = 0.0,
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
    source: str | None = None,
) -> tuple[dict[str, Any], Any, Any, Any]:
    """Summary, fit and (optionally) holdout validation; returns a JSON-ready report.

    ``snapshot`` is the first day after the calibration period and ``observation_end`` the
    first day after the holdout (exclusive ends; the options convert inclusive dates).
    ``source`` names the transaction file (its notes then name the file and the rows).
    """
    from segflow.models import (
        btyd_summary,
        compress,
        discrete_summary,
        validate_holdout,
    )

    unit = unit_code(time_unit)
    if spend_model not in SPEND_MODELS:
        raise InputError(
            f"unknown spend model {spend_model!r}; expected {', '.join(SPEND_MODELS)}"
        )
    cols = dict(customer_col=customer_col, ts_col=ts_col, amount_col=amount_col)
    first, last, first_purchase = _purchase_span(transactions, snapshot, cols)
    _refuse_no_history(first_purchase, snapshot, model_name)
    report: dict[str, Any] = {
        "model": model_name, "time_unit": time_unit,
        "calibration_end": snapshot - dt.timedelta(days=1),
        "calibration": _window(first, snapshot, time_unit),
        "warnings": [], "notes": [],
    }
    report["notes"].extend(_left_out(transactions, customer_col, ts_col, amount_col, source))
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", UserWarning)  # segflow's counted data warnings
        if model_name == "bgbb":
            summary = discrete_summary(transactions, calibration_end=snapshot,
                                       time_unit=unit, **cols)
            triples = compress(summary, ("x", "t_x", "n"))
        else:
            summary = btyd_summary(transactions, calibration_end=snapshot,
                                   observation_end=observation_end, time_unit=unit, **cols)
            summary = summary.cache()
            triples = compress(summary)
        report["summary_seconds"] = time.perf_counter() - started
        model = _model(model_name, penalizer).fit(triples)
        spend = None
        if model_name != "bgbb" and (amount_col is not None or order_value is not None):
            spend, notes = _fit_spend(summary, spend_model, order_value, penalizer)
            report["notes"].extend(notes)
    report["warnings"] = [str(w.message) for w in caught] + _after_the_data(last, snapshot)
    report.update(model.to_dict())
    report["model"] = model_name
    zero_T = int(getattr(model, "n_zero_T_", 0))
    report["customers"] = {
        "in_summary": int(triples["count"].sum()),
        "fitted": model.n_customers_,
        "first_purchase_on_last_day": zero_T,
        "repeat_buyers": int(triples.loc[triples.x > 0, "count"].sum()),
        "distinct_triples": model.n_rows_,
    }
    if zero_T:
        report["notes"].append(
            (f"{zero_T} customers made their first purchase" if zero_T != 1 else
             "1 customer made a first purchase") + " on the last calibration day "
            "(T = 0): no information for the fit, so left out of it; scored as "
            "new (BG/NBD and Pareto/NBD: P(alive) = 1; expected "
            "purchases from the prior)"
        )
    if spend is not None:
        report["spend_model"] = _spend_report(spend)
    if observation_end is not None and model_name != "bgbb":
        result = validate_holdout(summary, model, time_unit=unit, spend_model=spend)
        report["holdout"] = {
            **_window(snapshot, observation_end, time_unit),
            "end": observation_end - dt.timedelta(days=1),
            "metrics": result.to_dict()["data"],
            "by_frequency": result.to_dict()["by_frequency"],
        }
    return report, summary, model, spend


def _fit_spend(
    summary: Any, spend_model: str, order_value: float | None, penalizer: float
) -> tuple[Any, list[str]]:
    """The spend model chosen by ``--spend-model`` and ``--order-value``, and its notes.

    ``gamma-gamma``: the Gamma-Gamma fit (a constant spend when every order has one price;
    no spend model, with a warning, when it cannot be fitted). ``constant``: the given order
    value, else the mean value of the repeat orders. ``none``: the given order value if
    any, else no spend (no CLV column).
    """
    from segflow.models import ConstantSpendModel, compress, fit_spend_model
    from segflow.models._summary import check_spend

    if order_value is not None:
        if spend_model == "gamma-gamma":
            raise InputError(
                "--order-value sets a constant expected spend: use it with --spend-model "
                "constant or none"
            )
        return ConstantSpendModel(order_value, "given (--order-value)"), []
    if spend_model == "none":
        return None, []
    pairs = compress(summary, ("x", "monetary_value"))
    if spend_model == "constant":
        check_spend(summary)
        repeat = pairs[(pairs.x > 0) & pairs.monetary_value.notna()]
        orders = float((repeat.x * repeat["count"]).sum())
        if orders == 0:
            raise InputError("--spend-model constant: no repeat orders to average; give "
                             "--order-value")
        mean = float((repeat.x * repeat.monetary_value * repeat["count"]).sum()) / orders
        return ConstantSpendModel(mean, "mean value of the repeat orders"), []
    try:
        check_spend(summary)
        return fit_spend_model(pairs, penalizer=penalizer)
    except SegflowError as exc:
        warnings.warn(
            f"no spend model, so no expected spend or CLV: {exc}", UserWarning, stacklevel=2
        )
        return None, []


def _spend_report(spend: Any) -> dict[str, Any]:
    if not hasattr(spend, "params_"):
        return spend.to_dict()
    return {
        **spend.to_dict(),
        "model": "gamma-gamma",
        "frequency_spend_correlation": spend.frequency_spend_correlation_,
        "mean_spend": spend.mean_spend_,
        "population_mean_spend": spend.population_mean_spend(),
        "repeat_buyers_left_out_nonpositive_spend": spend.n_nonpositive_spend_,
    }


def _length(window: dict[str, Any]) -> str:
    if window.get("days") is None:
        return f"{window['first_day']} .. {window['last_day']}"
    unit = window["unit"]
    length = window["length"]
    return (
        f"{window['first_day']} .. {window['last_day']} ({window['days']} days = "
        f"{length:.4g} {unit}{'' if length == 1 else 's'})"
    )


def customers_line(c: dict[str, Any]) -> str:
    """The customers of a fit (``report["customers"]``) as the fit line counts them: those
    fitted, and the first buyers of the last calibration day (T = 0) left out of the fit,
    as its note says (the line said "401 customers" where 400 were fitted)."""
    text = f"{c['fitted']:,} customers fitted"
    if c.get("first_purchase_on_last_day"):
        text += (f" (of {c['in_summary']:,}: {c['first_purchase_on_last_day']:,} with T = 0 "
                 "left out)")
    return (f"{text}, {c['repeat_buyers']:,} repeat buyers, {c['distinct_triples']:,} "
            "distinct triples")


def print_fit(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{report['model']} fit ({report['time_unit']})")
    for col in ("parameter", "estimate", "std. error"):
        table.add_column(col)
    for name, value in report["params"].items():
        table.add_row(name, f"{value:.4f}", f"{report['standard_errors'][name]:.4f}")
    spend = report.get("spend_model", {})
    for name, value in spend.get("params", {}).items():
        table.add_row(f"spend {name}", f"{value:.4f}",
                      f"{spend['standard_errors'][name]:.4f}")
    if spend.get("model") == "constant":
        table.add_row("spend (constant)", f"{spend['expected_spend']:.4f}", spend["source"])
    stdout.print(table)
    c = report["customers"]
    stdout.print(f"calibration: {_length(report['calibration'])}", highlight=False)
    if "holdout" in report:
        stdout.print(f"holdout: {_length(report['holdout'])}", highlight=False)
    stdout.print(
        f"log-likelihood {report['log_likelihood']:.2f}; converged {report['converged']}; "
        f"fit {report['fit_seconds']:.2f} s; {customers_line(c)}",
        highlight=False,
    )
    for row in report.get("holdout", {}).get("metrics", []):
        stdout.print(
            f"holdout {row['predictor']}: MAE {row['mae_purchases']:.3f}, RMSE "
            f"{row['rmse_purchases']:.3f}, predicted {row['predicted_total']:.0f} vs actual "
            f"{row['actual_total']:.0f}",
            highlight=False,
        )
    for note in report["notes"]:
        print_labelled("note", note, style="")
    for w in report["warnings"]:
        print_labelled("warning", w)
