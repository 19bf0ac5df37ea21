"""Period deltas of the purchase features (groups ``rfm``, the value part of ``pattern``, and
``seasonality``): transactions are read once, for every snapshot.

The definitions are those of :mod:`segflow.features._purchases` (the readable per-snapshot
version, which the one-pass result is tested against). How an order maps to periods:

* an order is visible from the period of its first purchase line (``_ko``); its time (for
  windows, recency and seasonality) is that line's, so it never changes once visible;
* its amount and quantity grow with the lines of later periods (each line adds at its own
  period); it becomes a *paid* order at the period of its first positive line (``_kp``) and a
  promo order at the period of its first line with a promo code (``_kpr``);
* a window of ``d`` days keeps the order from its period until the period of ``day + d``
  (the first snapshot more than ``d`` days after it); the previous 12 months start at the
  period of ``day + 365`` and end at the period of ``day + 730``.

Returns (line by line, at the line's own time) follow the same windows.
"""

from __future__ import annotations

import ibis

from segflow.features._periods import Periods, emit, micro, windowed
from segflow.features._purchase_def import is_purchase_line, is_return_line, order_ts_key
from segflow.features._window import DAYS_12M

_ORDER_KEY = ["customer_id", "transaction_id", "_ts_key"]


def period_lines(transactions: ibis.Table, periods: Periods) -> ibis.Table:
    """Transaction rows seen by some snapshot, with ``_ret``, ``_buy``, ``_day``, the order
    key part ``_ts_key`` and their period ``_k`` (``customer_id`` as given: the caller passes
    integer surrogate keys)."""
    t = transactions
    t = t.filter(t.customer_id.notnull(), t.ts.notnull(), t.ts < periods.end_ts())
    t = t.mutate(
        _ret=is_return_line(t),
        _buy=is_purchase_line(t),
        _day=t.ts.date().epoch_days().cast("int64"),
        _ts_key=order_ts_key(t),
    )
    return periods.lookup(t, "_day", {"_k": 0})


def _window_offsets(window_days: int | None) -> dict[str, int]:
    offsets = {"_b12": DAYS_12M, "_b24": 2 * DAYS_12M}
    if window_days is not None:
        offsets["_bw"] = window_days
    return offsets


def order_deltas(lines: ibis.Table, periods: Periods, window_days: int | None) -> list[ibis.Table]:
    """Deltas of the order counts and amounts, first/last purchase days and seasonality."""
    b = lines.filter(lines._buy)
    promo = (b.promo_code.notnull() & (b.promo_code.strip() != "")).cast("int64")
    per = b.group_by([*_ORDER_KEY, "_k"]).aggregate(
        _amt=micro(b.amount).sum(),
        _qty=micro(b.quantity).sum(),
        _qtyn=b.quantity.count(),
        _pos=(b.amount > 0).cast("int64").max(),
        _promo=promo.max(),
        _d=b._day.min(),
        _t=b.ts.min(),
    )
    w = ibis.window(group_by=_ORDER_KEY)
    null = ibis.null("int64")
    per = per.mutate(
        _od=per._d.min().over(w),
        _ot=per._t.min().over(w),
        _ko=per._k.min().over(w),
        _kp=ibis.ifelse(per._pos == 1, per._k, null).min().over(w),
        _kpr=ibis.ifelse(per._promo == 1, per._k, null).min().over(w),
    )
    per = per.mutate(
        _cnt=(per._k == per._ko).cast("int64"),
        _paid=(per._k == per._kp).fill_null(False).cast("int64"),
        _pr=(per._k == per._kpr).fill_null(False).cast("int64"),
    )
    per = periods.lookup(per, "_od", _window_offsets(window_days))
    keys = ["customer_id", "_k", "_b12", "_b24", *(["_bw"] if window_days is not None else [])]
    g = per.group_by(keys).aggregate(
        _cnt=per._cnt.sum(),
        _paid=per._paid.sum(),
        _pr=per._pr.sum(),
        _amt=per._amt.sum(),
        _qty=per._qty.sum(),
        _qtyn=per._qtyn.sum(),
        _first=per._od.min(where=per._cnt == 1),
        _last=per._od.max(where=per._cnt == 1),
    )
    k = g._k
    parts = [emit(g, k, {"orders_total": g._cnt, "_first": g._first, "_last": g._last})]
    parts += windowed(g, k, g._bw if window_days is not None else None, {
        "_freq_w": g._cnt, "_paid_w": g._paid, "_promo_w": g._pr, "_gross_w": g._amt,
        "_qty_w": g._qty.fill_null(0), "_qtyn_w": g._qtyn,
    })
    parts += windowed(g, k, g._b12, {"_freq_12": g._cnt, "_gross_12": g._amt})
    prev_entry = ibis.greatest(k, g._b12)
    parts += windowed(g, prev_entry, g._b24, {"_freq_prev": g._cnt, "_gross_prev": g._amt})
    parts.append(_season_deltas(per.filter(per._cnt == 1)))
    return parts


def _season_deltas(orders: ibis.Table) -> ibis.Table:
    """Orders per quarter (all history), and per candidate peak quarter ``q`` the number of
    calendar years in which fewer than half of the year's orders fell in ``q`` (``_bad{q}``),
    plus the number of years with orders: as deltas per period."""
    o = orders.mutate(_y=orders._ot.year(), _q=orders._ot.quarter())
    yk = o.group_by(["customer_id", "_y", "_k"]).aggregate(
        **{f"_c{q}": o.count(where=o._q == q) for q in range(1, 5)}
    )
    w = ibis.cumulative_window(group_by=["customer_id", "_y"], order_by="_k")
    cum = {f"_cum{q}": yk[f"_c{q}"].sum().over(w) for q in range(1, 5)}
    yk = yk.mutate(**cum)
    total = yk._cum1 + yk._cum2 + yk._cum3 + yk._cum4
    yk = yk.mutate(
        **{f"_bad{q}": (yk[f"_cum{q}"] * 2 < total).cast("int64") for q in range(1, 5)},
        _first_y=(ibis.row_number().over(group_by=["customer_id", "_y"], order_by="_k") == 0),
    )
    lagw = ibis.window(group_by=["customer_id", "_y"], order_by="_k")
    deltas = {
        f"_dbad{q}": yk[f"_bad{q}"] - yk[f"_bad{q}"].lag().over(lagw).fill_null(0)
        for q in range(1, 5)
    }
    yk = yk.mutate(**deltas, _dyears=yk._first_y.cast("int64"))
    out = yk.group_by(["customer_id", "_k"]).aggregate(
        **{f"_q{q}": yk[f"_c{q}"].sum() for q in range(1, 5)},
        **{f"_dbad{q}": yk[f"_dbad{q}"].sum() for q in range(1, 5)},
        _years=yk._dyears.sum(),
    )
    return out.select("customer_id", "_k", *[c for c in out.columns if c not in ("customer_id", "_k")])


def line_deltas(lines: ibis.Table, periods: Periods, window_days: int | None) -> list[ibis.Table]:
    """Deltas of the returned value in the windows, and the first day of any line."""
    first = lines.group_by(["customer_id", "_k"]).aggregate(_first_any=lines._day.min())
    r = lines.filter(lines._ret)
    r = r.group_by(["customer_id", "_k", "_day"]).aggregate(
        _ret=micro(r.amount.abs()).sum().fill_null(0)
    )
    r = periods.lookup(r, "_day", _window_offsets(window_days))
    keys = ["customer_id", "_k", "_b12", "_b24", *(["_bw"] if window_days is not None else [])]
    g = r.group_by(keys).aggregate(_ret=r._ret.sum())
    k = g._k
    parts = [emit(first, first._k, {"_first_any": first._first_any})]
    parts += windowed(g, k, g._bw if window_days is not None else None, {"_ret_w": g._ret})
    parts += windowed(g, k, g._b12, {"_ret_12": g._ret})
    parts += windowed(g, ibis.greatest(k, g._b12), g._b24, {"_ret_prev": g._ret})
    return parts


#: Running-sum measures of the purchase deltas, and those combined by min / max.
SUMS = (
    "orders_total", "_freq_w", "_paid_w", "_promo_w", "_gross_w", "_qty_w", "_qtyn_w",
    "_freq_12", "_gross_12", "_freq_prev", "_gross_prev", "_ret_w", "_ret_12", "_ret_prev",
    "_q1", "_q2", "_q3", "_q4", "_dbad1", "_dbad2", "_dbad3", "_dbad4", "_years",
)
MINS = ("_first", "_first_any")
MAXS = ("_last",)
