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

from collections.abc import Collection

import ibis

from segflow.features._periods import Periods, emit, live
from segflow.features._purchase_def import (
    ORDER_KEY,
    is_purchase_line,
    is_return_line,
    order_ts_key,
)
from segflow.features._window import DAYS_12M, money

_ORDER_KEY = list(ORDER_KEY)


def period_lines(transactions: ibis.Table, periods: Periods) -> ibis.Table:
    """Transaction rows seen by some snapshot, with ``_ret``, ``_buy``, ``_day``, the order
    key part ``_ts_key`` and their period ``_k`` (``customer_id`` as given: the caller passes
    integer surrogate keys); of the other columns only those of :data:`_LINE_COLUMNS`."""
    t = transactions
    t = t.filter(t.customer_id.notnull(), t.ts.notnull(), t.ts < periods.end_ts())
    t = t.mutate(
        _ret=is_return_line(t),
        _buy=is_purchase_line(t),
        _day=t.ts.date().epoch_days().cast("int64"),
        _ts_key=order_ts_key(t),
    )
    # only the columns the deltas read: callers materialise this table
    t = t.select(*[c for c in t.columns if c in _LINE_COLUMNS])
    return periods.lookup(t, "_day", {"_k": 0})


#: The columns of :func:`period_lines` (those of the transactions that exist, and the flags).
_LINE_COLUMNS = ("customer_id", "transaction_id", "ts", "amount", "quantity", "promo_code",
                 "product_id", "category", "_ret", "_buy", "_day", "_ts_key")


def _window_offsets(window_days: int | None) -> dict[str, int]:
    offsets = {"_b12": DAYS_12M, "_b24": 2 * DAYS_12M}
    if window_days is not None:
        offsets["_bw"] = window_days
    return offsets


def order_periods(lines: ibis.Table, periods: Periods, window_days: int | None) -> ibis.Table:
    """One row per (order, period with purchase lines of it): the period's amount, quantity,
    flags, the order's first day ``_od`` and time ``_ot``, whether the order becomes visible
    (``_cnt``), paid (``_paid``) or a promo order (``_pr``) at this period, and the periods
    where its windows end (``_b12``, ``_b24``, ``_bw``)."""
    b = lines.filter(lines._buy)
    promo = (b.promo_code.notnull() & (b.promo_code.strip() != "")).cast("int64")
    per = b.group_by([*_ORDER_KEY, "_k"]).aggregate(
        _amt=money(b.amount).sum(),
        _qty=money(b.quantity).sum(),
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
    return periods.lookup(per, "_od", _window_offsets(window_days))


def order_deltas(per: ibis.Table, window_days: int | None) -> list[ibis.Table]:
    """Deltas of the order counts and amounts and the first/last purchase days, from
    :func:`order_periods`: one part per position (the period itself, the end of the
    ``window_days`` window, the end of the 12 months = start of the previous 12, the end of
    the previous 12), each carrying every measure that enters or leaves there."""
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
    return _window_parts(g, window_days, {
        "_freq_w": g._cnt, "_paid_w": g._paid, "_promo_w": g._pr, "_gross_w": g._amt,
        "_qty_w": g._qty.fill_null(0), "_qtyn_w": g._qtyn,
    }, {"_freq_12": g._cnt, "_gross_12": g._amt}, {"_freq_prev": g._cnt, "_gross_prev": g._amt},
        {"orders_total": g._cnt, "_first": g._first, "_last": g._last})


def _window_parts(
    g: ibis.Table,
    window_days: int | None,
    in_w: dict[str, ibis.Value],
    in_12: dict[str, ibis.Value],
    in_prev: dict[str, ibis.Value],
    forever: dict[str, ibis.Value],
) -> list[ibis.Table]:
    """Delta parts of amounts counted forever, in the ``window_days`` window (``_bw``), the
    last 12 months (until ``_b12``) and the 12 months before (from ``_b12`` until ``_b24``)
    of a table with ``customer_id``, ``_k`` and those ends."""
    k = g._k
    bw = g._bw if window_days is not None else None
    p1 = ibis.greatest(k, g._b12)  # where the last 12 months end and the previous 12 start
    w = {m: live(v, k, bw) for m, v in in_w.items()}
    m12 = {m: live(v, k, g._b12) for m, v in in_12.items()}
    prev = {m: live(v, p1, g._b24) for m, v in in_prev.items()}
    parts = [emit(g, k, {**forever, **w, **m12})]
    parts.append(emit(g, p1, {**{m: -v for m, v in m12.items()}, **prev}))
    parts.append(emit(g, g._b24, prev, negate=True))
    if bw is not None:
        parts.append(emit(g, bw, w, negate=True))
    return parts


def season_deltas(per: ibis.Table) -> ibis.Table:
    """The seasonality deltas of the orders of :func:`order_periods` (one row per customer
    and period, see :func:`_season_deltas`)."""
    return _season_deltas(per.filter(per._cnt == 1))


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
        _ret=money(r.amount.abs()).sum().fill_null(0)
    )
    r = periods.lookup(r, "_day", _window_offsets(window_days))
    keys = ["customer_id", "_k", "_b12", "_b24", *(["_bw"] if window_days is not None else [])]
    g = r.group_by(keys).aggregate(_ret=r._ret.sum())
    parts = [emit(first, first._k, {"_first_any": first._first_any})]
    return parts + _window_parts(g, window_days, {"_ret_w": g._ret}, {"_ret_12": g._ret},
                                 {"_ret_prev": g._ret}, {})


def breadth_deltas(lines: ibis.Table, periods: Periods,
                   items: Collection[str] = ("product_id", "category")) -> list[ibis.Table]:
    """Deltas of the distinct products and categories among purchase lines (group
    ``breadth``, :func:`segflow.features._breadth.breadth_features`): a product counts in
    all history from the period of its first line, and in the last 12 months while one of
    its lines is less than 365 days old (a stretch per product, as web sessions). Only the
    counts of the columns ``items`` (``product_id``, ``category``) are computed."""
    b = lines.filter(lines._buy)
    b = periods.lookup(b, "_day", {"_b12": DAYS_12M})
    parts: list[ibis.Table] = []
    for col, total, m12 in (("product_id", "_products", "_products_12"),
                            ("category", "_categories", "_categories_12")):
        if col not in b.columns or col not in items:
            continue
        x = b.filter(b[col].notnull())
        x = x.group_by(["customer_id", x[col].name("_item"), "_k"]).aggregate(_b=x._b12.max())
        parts += stretch_deltas(x, ["customer_id", "_item"], total, m12, periods.n)
    return parts


def stretch_deltas(x: ibis.Table, key: list[str], total: str, recent: str,
                   n: int) -> list[ibis.Table]:
    """For items ``key`` (customer first) seen at periods ``_k`` with window ends ``_b`` (the
    period from which the latest occurrence so far stops counting): ``total`` is +1 at an
    item's first period, ``recent`` +1 at every period with occurrences and -1 where that
    stretch ends (the next period with occurrences, or the window end before it)."""
    w = ibis.cumulative_window(group_by=key, order_by="_k")
    nxt = x._k.lead().over(group_by=key, order_by="_k")
    rn = ibis.row_number().over(group_by=key, order_by="_k")
    x = x.mutate(_end=x._b.max().over(w), _next=nxt.fill_null(n + 1), _rn=rn)
    x = x.mutate(_stop=ibis.least(x._next, x._end))
    return [
        x.select(customer_id=x.customer_id, _k=x._k,
                 **{total: (x._rn == 0).cast("int64"),
                    recent: (x._stop > x._k).cast("int64")}),
        x.filter(x._stop > x._k).select(customer_id=x.customer_id, _k=x._stop,
                                        **{recent: ibis.literal(-1, "int64")}),
    ]


#: Running-sum measures of the purchase deltas, and those combined by min / max.
SUMS = (
    "orders_total", "_freq_w", "_paid_w", "_promo_w", "_gross_w", "_qty_w", "_qtyn_w",
    "_freq_12", "_gross_12", "_freq_prev", "_gross_prev", "_ret_w", "_ret_12", "_ret_prev",
    "_q1", "_q2", "_q3", "_q4", "_dbad1", "_dbad2", "_dbad3", "_dbad4", "_years",
)
SEASON_SUMS = ("_q1", "_q2", "_q3", "_q4", "_dbad1", "_dbad2", "_dbad3", "_dbad4", "_years")
BREADTH_SUMS = ("_products", "_products_12", "_categories", "_categories_12")
MINS = ("_first", "_first_any")
MAXS = ("_last",)
