"""Data preparation for the BTYD models, in the engine: the (x, t_x, T) summary and its triples.

Definitions (those of Fader, Hardie & Lee 2005 on CDNOW, which land on the published values):

* Purchases are **purchase days**: all lines of one customer on one calendar day are one
  transaction. A day is a purchase day when it has a purchase line (segflow's one purchase
  definition, :mod:`segflow.features._purchase_def`: not a return, amount >= 0, so zero-value
  lines are purchases); its spend is the sum of its purchase lines (returns are not netted
  into spend statistics). A return-only day is not a purchase; a purchase day whose returns
  exceed its purchases (net-negative) stays a purchase day with its purchase spend. Both
  kinds of day are counted in a warning.
* The **calibration period** is every day before ``calibration_end`` (a snapshot date:
  rows with ``ts < calibration_end``). Its last day is ``calibration_end - 1 day``.
* ``x``: purchase days in the calibration period minus one (repeat purchases).
  ``t_x``: days from the first to the last purchase day; ``T``: days from the first purchase
  day to the last calibration day. Both are divided by the time unit (1, 7 or 365.25/12 days).
* ``monetary_value``: mean net amount of the *repeat* purchase days (first day excluded);
  null when x = 0.
* Customers whose first purchase day is on or after ``calibration_end`` are not in the summary
  (they were not yet acquired); they are counted in a warning.
* With ``observation_end`` the **holdout** is ``calibration_end <= day < observation_end``:
  ``x_holdout`` purchase days, ``holdout_spend`` their net amount, and ``duration_holdout`` its
  length in time units. ``x_last_period`` and ``last_period_spend`` hold the same for the last
  calibration window of the holdout's length (the naive "last period repeated" baseline).
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from segflow._dates import as_date
from segflow._literals import float_literal
from segflow.errors import InputError
from segflow.features._purchase_def import is_purchase_line
from segflow.features._window import money

#: Length of one time unit in days. A "month" is the mean Gregorian month.
TIME_UNITS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}
_ALIASES = {"day": "D", "days": "D", "week": "W", "weeks": "W", "month": "M", "months": "M"}


def unit_days(time_unit: str) -> float:
    """Days per time unit for ``"D"|"W"|"M"`` (or ``day|week|month``)."""
    key = _ALIASES.get(str(time_unit).lower(), str(time_unit).upper())
    if key not in TIME_UNITS:
        raise InputError(f"unknown time unit {time_unit!r}; expected day, week or month (D, W, M)")
    return TIME_UNITS[key]


def purchase_days(
    transactions: ir.Table,
    *,
    end: dt.date | None,
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
) -> ir.Table:
    """One row per customer and calendar day before ``end``.

    Columns ``customer_id, day, amount, net_amount, purchase``: ``amount`` is the spend of
    the day's purchase lines, ``net_amount`` the sum of all its lines (returns included),
    ``purchase`` is true when the day has a purchase line (not a return, amount >= 0: a
    zero-value purchase is a purchase; a return-only day is not). A return is a line with
    ``is_return`` true (when the table has that column) or a negative amount.
    """
    for col in (customer_col, ts_col, amount_col):
        if col is not None and col not in transactions.columns:
            from segflow._suggest import did_you_mean

            raise InputError(
                f"the transactions lack the column {col!r}; {did_you_mean(col, transactions.columns)}"
                f"columns are {list(transactions.columns)}",
                column=col,
            )
    ts = transactions[ts_col]
    day = ts if ts.type().is_date() else ts.cast("timestamp").date()
    amount = (
        transactions[amount_col].cast("float64") if amount_col is not None else ibis.literal(1.0)
    )
    buy = is_purchase_line(transactions, amount_col=amount_col)
    rows = transactions.select(
        customer_id=transactions[customer_col].cast("string"), day=day, amount=amount, _buy=buy
    ).filter(ibis._.customer_id.notnull(), ibis._.day.notnull())
    if end is not None:
        rows = rows.filter(rows.day < end)
    return rows.group_by(["customer_id", "day"]).aggregate(
        amount=exact_sum(rows.amount, where=rows._buy).fill_null(0.0),
        net_amount=exact_sum(rows.amount),
        purchase=rows._buy.any(),
    )


def exact_sum(value: ir.NumericColumn, where: ir.BooleanValue | None = None) -> ir.FloatingScalar:
    """The sum of ``value`` to the millionth (decimal(38, 6), exact), as float64.

    A float sum in a parallel aggregation depends on the order the engine's threads add the
    rows in, so two runs (or two thread counts) could give a customer's spend different last
    bits, and the models fitted on it different last digits; a decimal sum is exact on
    DuckDB and Spark alike, and its float is the same on every run. A group with a value a
    decimal cannot hold (infinite, NaN, 1e30 or more) keeps the float sum, so the non-finite
    result still reaches :func:`check_spend`, which names the customer.
    """
    value = value.cast("float64")
    odd = value.isnan() | value.isinf() | (value.abs() >= 1e30)
    fits = ~odd if where is None else (~odd & where)
    exact = money(ibis.ifelse(fits, value, ibis.null("float64"))).sum()
    odd_rows = odd.cast("int64").sum(where=where)
    return ibis.ifelse(odd_rows > 0, value.sum(where=where), exact.cast("float64"))


def btyd_summary(
    transactions: ir.Table,
    *,
    calibration_end: dt.date | str,
    observation_end: dt.date | str | None = None,
    time_unit: str = "W",
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
    warn: bool = True,
    days: ir.Table | None = None,
) -> ir.Table:
    """Per-customer BTYD summary, as an Ibis expression (computed in the engine).

    Parameters
    ----------
    transactions : ibis.Table
        The transaction log: one row per line (purchase or return).
    calibration_end : date or str
        Snapshot date: the calibration period is every day *before* it.
    observation_end : date or str, optional
        End (exclusive) of the holdout period; adds ``x_holdout``, ``holdout_spend`` and
        ``duration_holdout``.
    time_unit : {"D", "W", "M"} or {"day", "week", "month"}, default="W"
        Unit of ``t_x``, ``T`` and ``duration_holdout``.
    customer_col, ts_col, amount_col : str
        Column names. ``amount_col=None`` counts every day as a purchase (no spend).
    warn : bool, default=True
        Count and warn about excluded customers and return-only days (runs one small query).
    days : ibis.Table, optional
        :func:`purchase_days` of ``transactions`` with ``end=None`` (every day), when the
        caller has them (cached, read by several summaries: ``segflow run``'s CLV stage and
        its diagnostics); the summary filters them instead of grouping the lines again.
        Same result.

    Returns
    -------
    ibis.Table
        ``customer_id, x, t_x, T, monetary_value, first_purchase`` (+ holdout columns).
        ``x`` is int64; times are float64 in ``time_unit``.
    """
    cal_end = as_date(calibration_end, "calibration_end")
    obs_end = None if observation_end is None else as_date(observation_end, "observation_end")
    if obs_end is not None and obs_end <= cal_end:
        raise InputError(
            f"observation_end {obs_end} must be after calibration_end {cal_end}"
        )
    unit = unit_days(time_unit)
    cols = dict(customer_col=customer_col, ts_col=ts_col, amount_col=amount_col)

    def before(end: dt.date | None) -> ir.Table:
        if days is None:
            return purchase_days(transactions, end=end, **cols)
        return days if end is None else days.filter(days.day < end)

    if warn:  # counts customers acquired later too, so it reads past the calibration end
        _warn_exclusions(before(obs_end), cal_end)
    bought = before(obs_end or cal_end)
    bought = bought.filter(bought.purchase)
    cal = bought.filter(bought.day < cal_end)
    # one aggregate, no window: repeat spend = total - the first day's amount (arg_min)
    per = cal.group_by("customer_id").aggregate(
        first_purchase=cal.day.min(),
        last_purchase=cal.day.max(),
        n_days=cal.count(),
        total_spend=exact_sum(cal.amount),
        first_spend=cal.amount.argmin(cal.day),
    )
    per = per.mutate(repeat_spend=per.total_spend - per.first_spend)
    x = (per.n_days - 1).cast("int64")
    last_cal_day = cal_end - dt.timedelta(days=1)
    summary = per.select(
        customer_id=per.customer_id,
        x=x,
        # t_x and T in days (engine-portable day deltas), then in time units
        t_x=per.last_purchase.delta(per.first_purchase, unit="day").cast("float64") / unit,
        T=ibis.literal(last_cal_day).delta(per.first_purchase, unit="day").cast("float64") / unit,
        monetary_value=ibis.ifelse(x > 0, per.repeat_spend / x.cast("float64"), ibis.null("float64")),
        first_purchase=per.first_purchase,
    )
    if obs_end is None:
        return summary
    hold = bought.filter(bought.day >= cal_end)
    hold = hold.group_by("customer_id").aggregate(
        x_holdout=hold.count(), holdout_spend=exact_sum(hold.amount)
    )
    # the naive "last period repeated" baseline: purchase days in the last calibration window
    # as long as the holdout
    window_start = cal_end - (obs_end - cal_end)
    last = cal.filter(cal.day >= window_start)
    last = last.group_by("customer_id").aggregate(
        x_last_period=last.count(), last_period_spend=exact_sum(last.amount)
    )
    joined = summary.left_join(hold, "customer_id")
    joined = joined.select(*summary.columns, "x_holdout", "holdout_spend")
    joined = joined.left_join(last, "customer_id")
    return joined.select(
        *[joined[c] for c in summary.columns],
        x_holdout=joined.x_holdout.fill_null(0).cast("int64"),
        holdout_spend=joined.holdout_spend.fill_null(0.0),
        x_last_period=joined.x_last_period.fill_null(0).cast("int64"),
        last_period_spend=joined.last_period_spend.fill_null(0.0),
        duration_holdout=float_literal((obs_end - cal_end).days / unit),
    )


def _warn_exclusions(days: ir.Table, cal_end: dt.date) -> None:
    """Count return-only days and customers acquired after the calibration end; warn."""
    per = days.group_by("customer_id").aggregate(
        first_buy=days.day.min(where=days.purchase),
        # days with a return line; a day of lines without an amount is no return (noted by
        # the file commands as rows without an amount)
        nonpositive=(~days.purchase & days.net_amount.notnull()).cast("int64").sum(),
        net_negative=(days.purchase & (days.net_amount < 0)).cast("int64").sum(),
    )
    stats = per.aggregate(
        customers=per.count(),
        born_after=(per.first_buy >= cal_end).cast("int64").sum(),
        only_returns=per.first_buy.isnull().cast("int64").sum(),
        nonpositive_days=per.nonpositive.sum(),
        net_negative_days=per.net_negative.sum(),
    ).execute()
    warn_exclusions({k: int(v) for k, v in stats.iloc[0].fillna(0).items()}, cal_end)


def warn_exclusions(row: dict[str, int], cal_end: dt.date) -> None:
    """Warn about the counts of :func:`_warn_exclusions` (``customers``, ``born_after``,
    ``only_returns``, ``nonpositive_days``, ``net_negative_days``)."""
    total = int(row["customers"])
    if int(row["born_after"]):
        warnings.warn(
            f"btyd_summary: excluded {int(row['born_after'])} of {total} customers whose first "
            f"purchase is on or after {cal_end}, the first day after the calibration period "
            f"(not yet acquired)",
            UserWarning,
            stacklevel=4,
        )
    if int(row["nonpositive_days"]):
        warnings.warn(
            f"btyd_summary: {int(row['nonpositive_days'])} return-only customer-days are not "
            f"purchases; {int(row['only_returns'])} of {total} customers have no purchase and "
            "are excluded",
            UserWarning,
            stacklevel=4,
        )

    if int(row["net_negative_days"]):
        warnings.warn(
            f"btyd_summary: {int(row['net_negative_days'])} purchase days have more returns "
            "than purchases (net-negative); they count as purchase days with the spend of "
            "their purchase lines",
            UserWarning,
            stacklevel=4,
        )


def check_spend(summary: ir.Table) -> None:
    """Raise :class:`InputError` naming the first customer whose mean spend is not finite.

    Infinite or NaN amounts in the file make a customer's ``monetary_value`` non-finite;
    the error names the customer (not a row of the compressed summary).
    """
    mv = summary.monetary_value
    bad = summary.filter(mv.notnull() & (mv.isinf() | mv.isnan()))
    row = bad.select("customer_id", "monetary_value").order_by("customer_id").limit(1).execute()
    if len(row):
        raise InputError(
            f"customer {row.customer_id.iloc[0]}: the mean repeat spend is "
            f"{float(row.monetary_value.iloc[0])!r}, not a finite number; check the amounts",
            column="monetary_value",
        )


def compress(summary: Any, columns: tuple[str, ...] = ("x", "t_x", "T")) -> pd.DataFrame:
    """Distinct triples with their number of customers, computed in the engine.

    Parameters
    ----------
    summary : ibis.Table or pandas.DataFrame
        The per-customer summary (see :func:`btyd_summary`).
    columns : tuple of str, default=("x", "t_x", "T")

    Returns
    -------
    pandas.DataFrame
        ``columns`` plus ``count``, sorted by the columns.
    """
    cols = list(columns)
    if isinstance(summary, pd.DataFrame):
        out = summary.groupby(cols, as_index=False).size().rename(columns={"size": "count"})
    else:
        out = summary.group_by(cols).aggregate(count=summary.count()).execute()
    return out.sort_values(cols, ignore_index=True)


def discrete_summary(
    transactions: ir.Table,
    *,
    calibration_end: dt.date | str,
    time_unit: str = "M",
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
) -> ir.Table:
    """Per-customer ``(x, t_x, n)`` for the BG/BB model: calendar periods as opportunities.

    Periods are calendar months (``year*12 + month``, never month deltas) or blocks of 1 or 7
    days counted from 1970-01-01. The acquisition period is 0; ``n`` is the number of periods
    after it up to the one holding the last calibration day; ``x`` counts the later periods
    with a purchase and ``t_x`` is the last of them (0 if none). Choose a calibration end on
    a period boundary so that the last period is complete.
    """
    cal_end = as_date(calibration_end, "calibration_end")
    unit = unit_days(time_unit)
    days = purchase_days(
        transactions, end=cal_end, customer_col=customer_col, ts_col=ts_col, amount_col=amount_col
    )
    days = days.filter(days.purchase)
    last_day = cal_end - dt.timedelta(days=1)

    def period(day: ir.DateValue) -> ir.IntegerValue:
        if unit > 28:
            return day.year().cast("int64") * 12 + day.month().cast("int64")
        since = day.delta(ibis.literal(dt.date(1970, 1, 1)), unit="day").cast("float64")
        return (since / unit).floor().cast("int64")

    per = days.mutate(period=period(days.day))
    per = per.group_by(["customer_id", "period"]).aggregate(n_days=per.count())
    per = per.mutate(first=per.period.min().over(group_by="customer_id"))
    out = per.group_by("customer_id").aggregate(
        x=(per.period > per.first).cast("int64").sum(),
        t_x=(per.period.max() - per.first.min()).cast("int64"),
        n=(period(ibis.literal(last_day)) - per.first.min()).cast("int64"),
    )
    return out
