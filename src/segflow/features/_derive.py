"""The one-pass features of a row of running values (the grid of
:mod:`segflow.features._snapshots`, or the feature state of :mod:`segflow.features._state`).

The row carries the running sums, minima and maxima of the period deltas (``_freq_w``,
``_gross_w``, ...: counts and days since 1970 as integers, money as exact decimals of six
places), the snapshot's day
``_sday``, the sign-up day ``_cd`` with its period ``_kc`` and the row's period ``_k``; the
functions here turn them into the feature columns of
:func:`segflow.features.customer_features` with the same expressions on the exact sums as
its :func:`segflow.features._purchases.value_features` (so the floats are equal, not close).
"""

from __future__ import annotations

import ibis

from segflow.features._purchases import _day_to_date
from segflow.features._window import safe_ratio


def one_pass_features(g: ibis.Table, wanted: set[str], cols: set[str]) -> dict[str, ibis.Value]:
    """The one-pass features of ``cols`` from the running sums of a grid row (the breadth and
    web columns only when asked for: their measures are computed only then)."""
    null = ibis.null("int64")
    sday = g._sday
    created = ibis.ifelse(g._kc.notnull() & (g._k >= g._kc), g._cd, null)
    first_any = g._first_any
    start = ibis.ifelse(
        created.isnull(),
        first_any,
        ibis.ifelse(first_any.isnull() | (created <= first_any), created, first_any),
    )
    # money: exact decimals, each feature one float of them (as value_features)
    gross_w, gross_12, gross_prev = g._gross_w, g._gross_12, g._gross_prev
    out: dict[str, ibis.Value] = {
        "recency_days": sday - g._last,
        "frequency": g._freq_w,
        "monetary": (gross_w - g._ret_w).cast("float64"),
        "frequency_12m": g._freq_12,
        "monetary_12m": (gross_12 - g._ret_12).cast("float64"),
        "frequency_prev_12m": g._freq_prev,
        "monetary_prev_12m": (gross_prev - g._ret_prev).cast("float64"),
        "first_purchase_date": _day_to_date(g._first),
        "last_purchase_date": _day_to_date(g._last),
        "tenure_days": sday - start,
        "signup_date": _day_to_date(created),
        "avg_order_value": safe_ratio(gross_w, g._paid_w),
        "basket_size": ibis.ifelse(
            g._qtyn_w == 0, ibis.null("float64"), safe_ratio(g._qty_w, g._freq_w)
        ),
        "promo_share": safe_ratio(g._promo_w, g._freq_w),
        "return_rate": safe_ratio(g._ret_w, gross_w),
        "spend_trend": safe_ratio(gross_12 - gross_prev, gross_12 + gross_prev),
    }
    if "seasonality" in wanted:
        out |= seasonality_columns(g)
    if "breadth" in wanted:
        out |= breadth_columns(g, cols)
    if "web" in wanted:
        web_cols = {
            "visits_90d": lambda: g._sess_90,
            "product_views_90d": lambda: g._views_90,
            "cart_adds_90d": lambda: g._carts_90,
            "cart_abandonment_rate_90d": lambda: safe_ratio(g._cart_sess - g._both_sess,
                                                            g._cart_sess),
            "browse_to_buy_90d": lambda: safe_ratio(g._buy_sess, g._sess_90),
            "days_since_last_visit": lambda: sday - g._last_visit,
        }
        out |= {name: value() for name, value in web_cols.items() if name in cols}
    return out


def breadth_columns(g: ibis.Table, cols: set[str]) -> dict[str, ibis.Value]:
    """Distinct products / categories: null until the customer's first purchase line with
    one (as :func:`segflow.features._breadth.breadth_features`); of ``cols`` only."""
    null = ibis.null("int64")
    out = {}
    for name, total, recent in (("products", "_products", "_products_12"),
                                ("categories", "_categories", "_categories_12")):
        if not {f"{name}_total", f"{name}_12m"} & cols:
            continue
        known = g[total] > 0
        out[f"{name}_total"] = ibis.ifelse(known, g[total], null)
        out[f"{name}_12m"] = ibis.ifelse(known, g[recent], null)
    return out


def seasonality_columns(g: ibis.Table) -> dict[str, ibis.Value]:
    q1, q2, q3, q4 = g._q1, g._q2, g._q3, g._q4
    total = q1 + q2 + q3 + q4
    peak = (
        ibis.cases(
            ((q1 >= q2) & (q1 >= q3) & (q1 >= q4), 1),
            ((q2 >= q3) & (q2 >= q4), 2),
            (q3 >= q4, 3),
            else_=4,
        )
    )
    peak = ibis.ifelse(total > 0, peak, ibis.null("int64"))
    top = ibis.cases((peak == 1, q1), (peak == 2, q2), (peak == 3, q3), (peak == 4, q4))
    bad = ibis.cases(
        (peak == 1, g._dbad1), (peak == 2, g._dbad2), (peak == 3, g._dbad3), (peak == 4, g._dbad4)
    )
    return {
        "peak_quarter": peak,
        "peak_quarter_share": safe_ratio(top, total),
        "same_season_flag": ibis.ifelse(total > 0, (g._years >= 2) & (bad == 0), ibis.null("boolean")),
    }
