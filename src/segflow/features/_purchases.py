"""Purchase features from the transactions table: RFM, 12-month values, patterns, seasonality.

Every function takes the transactions and a :class:`Frame` and returns one row per customer
who has at least one transaction row before the snapshot. Definitions are in
:mod:`segflow.features._registry`.
"""

from __future__ import annotations

import ibis

from segflow.features._purchase_def import (
    ORDER_KEY,
    is_purchase_line,
    is_return_line,
    order_ts_key,
)
from segflow.features._window import DAYS_12M, Frame, money, safe_ratio


def prepare_lines(transactions: ibis.Table, frame: Frame) -> ibis.Table:
    """Transaction rows before ``s`` with helper columns.

    ``_ret`` (a return line), ``_buy`` (a purchase line: not a return and ``amount >= 0``; see
    :mod:`segflow.features._purchase_def`), ``_day`` (days since 1970-01-01 of ``ts``), and
    the order key ``(customer_id, transaction_id, _ts_key)``: ``_ts_key`` is the timestamp for
    rows without a ``transaction_id`` (one order per customer and timestamp), null otherwise.
    ``product_id`` is added (null) when the table has no such column.
    """
    t = transactions
    t = t.filter(t.customer_id.notnull(), t.ts.notnull(), frame.before(t.ts))
    if "product_id" not in t.columns:
        t = t.mutate(product_id=ibis.null("string"))
    return t.mutate(
        _ret=is_return_line(t),
        _buy=is_purchase_line(t),
        _day=t.ts.date().epoch_days(),
        _ts_key=order_ts_key(t),
    )


def order_table(lines: ibis.Table) -> ibis.Table:
    """One row per order (purchase lines grouped by customer and order key).

    An order's time is its first line's ``ts``; amount and quantity are summed over its lines,
    exactly (:data:`segflow.features._window.EXACT_MONEY`: each line to a millionth, the sum
    a decimal); it used a promo code when any line has a non-empty one. A zero-value order is
    an order (a purchase occasion) but not a *paid* order: spend averages divide by paid
    orders.
    """
    t = lines.filter(lines._buy)
    promo = (t.promo_code.notnull() & (t.promo_code.strip() != "")).cast("int64")
    return t.group_by(list(ORDER_KEY)).aggregate(
        _ts=t.ts.min(),
        _day=t._day.min(),
        _amount=money(t.amount).sum(),
        _qty=money(t.quantity).sum(),
        _promo=promo.max(),
    )


def value_features(lines: ibis.Table, orders: ibis.Table, frame: Frame) -> ibis.Table:
    """RFM, 12-month values, order value, basket, promo share, return rate, trend.

    Money is summed exactly (decimals of six places, :func:`segflow.features._window.money`),
    and each money feature or ratio is one float64 of the exact sums (``monetary`` the
    float of gross minus returns, not the difference of two floats).

    Returns one row per customer with any transaction row before ``s``.
    """
    o = orders
    win = frame.in_window(o._ts)
    m12 = frame.within(o._ts, DAYS_12M)
    prev12 = frame.within(o._ts, 2 * DAYS_12M) & ~m12
    per_order = o.group_by("customer_id").aggregate(
        _first_day=o._day.min(),
        _last_day=o._day.max(),
        orders_total=o.count(),
        frequency=o.count(where=win),
        _paid_w=o.count(where=win & (o._amount > 0)),
        _gross_w=o._amount.sum(where=win),
        frequency_12m=o.count(where=m12),
        _gross_12m=o._amount.sum(where=m12),
        _gross_prev=o._amount.sum(where=prev12),
        frequency_prev_12m=o.count(where=prev12),
        _qty_w=o._qty.sum(where=win),
        _promo_orders=o._promo.sum(where=win),
    )
    t = lines
    ret_value = money(t.amount.abs())
    per_line = t.group_by("customer_id").aggregate(
        _first_any=t._day.min(),
        _ret_w=ret_value.sum(where=t._ret & frame.in_window(t.ts)),
        _ret_12m=ret_value.sum(where=t._ret & frame.within(t.ts, DAYS_12M)),
        _ret_prev=ret_value.sum(
            where=t._ret & frame.within(t.ts, 2 * DAYS_12M) & ~frame.within(t.ts, DAYS_12M)
        ),
    )
    agg = per_line.left_join(per_order, "customer_id").drop("customer_id_right")
    gross_w = agg._gross_w.fill_null(0)
    gross_12m = agg._gross_12m.fill_null(0)
    gross_prev = agg._gross_prev.fill_null(0)
    frequency = agg.frequency.fill_null(0)
    epoch = ibis.literal(frame.day)
    return agg.mutate(
        recency_days=(epoch - agg._last_day).cast("int64"),
        monetary=(gross_w - agg._ret_w.fill_null(0)).cast("float64"),
        monetary_12m=(gross_12m - agg._ret_12m.fill_null(0)).cast("float64"),
        frequency_prev_12m=agg.frequency_prev_12m.fill_null(0),
        monetary_prev_12m=(gross_prev - agg._ret_prev.fill_null(0)).cast("float64"),
        first_purchase_date=_day_to_date(agg._first_day),
        last_purchase_date=_day_to_date(agg._last_day),
        avg_order_value=safe_ratio(gross_w, agg._paid_w.fill_null(0)),
        basket_size=safe_ratio(agg._qty_w, frequency),
        promo_share=safe_ratio(agg._promo_orders.fill_null(0), frequency),
        return_rate=safe_ratio(agg._ret_w.fill_null(0), gross_w),
        spend_trend=safe_ratio(gross_12m - gross_prev, gross_12m + gross_prev),
    ).drop(
        "_gross_w", "_ret_w", "_gross_12m", "_ret_12m", "_gross_prev", "_ret_prev", "_qty_w",
        "_promo_orders", "_last_day", "_paid_w",
    )


def _day_to_date(day: ibis.IntegerValue) -> ibis.DateValue:
    """Days since 1970-01-01 back to a date."""
    return ibis.ifelse(
        day.isnull(),
        ibis.null("date"),
        ibis.date(1970, 1, 1) + day.cast("int32").as_interval("D"),
    )


def interpurchase_features(orders: ibis.Table, frame: Frame) -> ibis.Table:
    """Mean gap between distinct purchase days and its coefficient of variation (window),
    from integer sums (:func:`interpurchase_values`)."""
    o = orders
    days = o.filter(frame.in_window(o._ts)).select("customer_id", "_day").distinct()
    gap = days._day - days._day.lag().over(group_by="customer_id", order_by="_day")
    days = days.mutate(_g2=gap * gap)
    agg = days.group_by("customer_id").aggregate(
        _ndays=days._day.count(), _first=days._day.min(), _last=days._day.max(),
        _gap2=days._g2.sum())
    return agg.select("customer_id", **interpurchase_values(agg._ndays, agg._first, agg._last,
                                                            agg._gap2))


def interpurchase_values(n: ibis.IntegerValue, first: ibis.IntegerValue, last: ibis.IntegerValue,
                         gap2: ibis.IntegerValue) -> dict[str, ibis.Value]:
    """``ipt_mean_days`` and ``ipt_cv`` of a customer's ``n`` distinct purchase days (day
    numbers ``first`` to ``last``; ``gap2``: the sum of the squared gaps between them): the
    mean gap ``span / (n - 1)`` and the gaps' sample standard deviation over it, the variance
    ``((n - 1) gap2 - span^2) / ((n - 1)(n - 2))`` taken from those integers. A float
    standard deviation is summed in an order that depends on the engine (Spark's and
    DuckDB's differed in the last bit); these integers and the few divisions after them are
    the same double on every engine, at every snapshot and in the feature state."""
    span = last - first
    m = (n - 1).cast("float64")
    mean = ibis.ifelse(n >= 2, span.cast("float64") / m, ibis.null("float64"))
    var = (gap2 * (n - 1) - span * span).cast("float64") / (m * (m - 1))
    sd = ibis.ifelse(var > 0, var.sqrt(), 0.0)
    return {"ipt_mean_days": mean,
            "ipt_cv": ibis.ifelse(n >= 3, safe_ratio(sd, mean), ibis.null("float64"))}


def value_spend(lines: ibis.Table, frame: Frame, column: str) -> ibis.Table:
    """One row per (customer, value of ``column``) bought in the window: ``customer_id``,
    ``column``, ``_spend`` (the purchase lines' amounts summed exactly, decimal(38, 6)) and
    ``_last`` (the last line's ``ts``). Lines with a missing ``column`` are left out.

    What :func:`top_share` ranks; without ``window_days`` (the window is all history) also
    the (customer, category) rows that :func:`segflow.features._breadth.breadth_features`
    counts, so one grouping of the lines can serve both."""
    t = lines
    col = t[column]
    rows = t.filter(t._buy, frame.in_window(t.ts), col.notnull())
    return rows.group_by(["customer_id", column]).aggregate(
        _spend=money(rows.amount).sum(), _last=rows.ts.max())


def top_share(
    lines: ibis.Table, frame: Frame, column: str, prefix: str, count_name: str,
    *, spend: ibis.Table | None = None,
) -> ibis.Table:
    """The value of ``column`` with the highest gross spend in the window, its spend share, and
    the number of distinct values bought.

    Spend is summed exactly, as decimals of six places (a millionth of the currency unit; 38
    digits, so huge currencies do not overflow), so equal spends tie whatever the order of a
    parallel sum (with floating-point sums, 0.1 + 0.2 beat 0.3, and two runs could rank the
    same two values differently). Ties go to the
    alphabetically first value. Lines with a missing ``column`` are left out. Returns
    columns ``{prefix}``, ``{prefix}_share`` and ``count_name``.

    ``spend``: the :func:`value_spend` rows of ``column``, when the caller has them (else
    the lines are grouped here, without ``_last``).
    """
    if spend is None:
        t = lines
        col = t[column]
        spend = (
            t.filter(t._buy, frame.in_window(t.ts), col.notnull())
            .group_by(["customer_id", column])
            .aggregate(_spend=lambda x: money(x.amount).sum())
        )
    # per customer the highest spend, the total and the count; the values spending the
    # highest, of which the first (groupings and an equi-join: cheaper than a ranking window)
    per = spend.group_by(_pcid=spend.customer_id).aggregate(
        _max=spend._spend.max(), _total=spend._spend.sum(), _n=spend._spend.count())
    best = spend.join(per, [spend.customer_id == per._pcid, spend._spend == per._max])
    top = best.group_by("customer_id").aggregate(
        **{column: best[column].min()}, _spend=best._max.max(), _total=best._total.max(),
        _n=best._n.max())
    return top.select(
        "customer_id",
        **{
            prefix: top[column].cast("string"),
            f"{prefix}_share": safe_ratio(top._spend.cast("float64"), top._total.cast("float64")),
            count_name: top._n.cast("int64"),
        },
    )


def seasonality_features(orders: ibis.Table) -> ibis.Table:
    """Peak quarter, its share of orders, and the same-season-every-year flag (all history)."""
    o = orders
    yq = (
        o.mutate(_year=o._ts.year(), _q=o._ts.quarter())
        .group_by(["customer_id", "_year", "_q"])
        .aggregate(_orders=lambda x: x.count())
    )
    per_q = yq.group_by(["customer_id", "_q"]).aggregate(_orders=yq._orders.sum())
    rn = ibis.row_number().over(group_by="customer_id", order_by=[ibis.desc("_orders"), "_q"])
    ranked = per_q.mutate(_rn=rn, _total=per_q._orders.sum().over(group_by="customer_id"))
    peak = ranked.filter(ranked._rn == 0).select(
        "customer_id",
        peak_quarter=ranked._q.cast("int64"),
        peak_quarter_share=safe_ratio(ranked._orders, ranked._total),
    )
    joined = yq.join(peak, "customer_id")
    per_year = joined.group_by(["customer_id", "_year"]).aggregate(
        _total=joined._orders.sum(),
        _in_peak=joined._orders.sum(where=joined._q == joined.peak_quarter),
    )
    year_ok = (per_year._in_peak.fill_null(0) * 2 >= per_year._total).cast("int64")
    years = per_year.group_by("customer_id").aggregate(
        _years=per_year.count(), _years_ok=year_ok.sum()
    )
    out = peak.join(years, "customer_id")
    flag = (out._years >= 2) & (out._years_ok == out._years)
    return out.select("customer_id", "peak_quarter", "peak_quarter_share", same_season_flag=flag)
