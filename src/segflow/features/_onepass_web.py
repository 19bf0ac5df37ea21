"""Period deltas of the web features (group ``web``): events are read once, for every snapshot.

The definitions are those of :func:`segflow.features._behaviour.web_features`. Event counts
(views, cart adds) enter at the event's period and leave 90 days later. A *session* counts at
snapshot ``s`` when one of its events lies in ``[s - 90 days, s)``, which holds exactly when
its *last* event before ``s`` does; so between two periods with events of the session, the
session counts until the period of (its last event + 90 days). Likewise for "has a cart add",
"has a purchase" (its last such event) and "has both" (the earlier of the two lasts). Each of
these indicators becomes one +1/-1 pair of deltas per stretch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import ibis

from segflow.features._behaviour import CART_ADD_TYPES, PRODUCT_VIEW_TYPES, PURCHASE_TYPES
from segflow.features._periods import Periods, emit, live
from segflow.features._window import DAYS_WEB


def web_deltas(events: ibis.Table, periods: Periods) -> list[ibis.Table]:
    """Deltas of sessions, views, cart adds, cart/buy sessions (90 days) and the last event day."""
    return web_day_deltas(web_days(events, periods), periods)


def web_days(events: ibis.Table, periods: Periods) -> ibis.Table:
    """One row per (customer, session, event day) before the last snapshot: its views, cart
    adds and purchases (``_views``, ``_carts``, ``_buys``), its period ``_k`` and the period
    ``_b`` where it leaves the 90-day window. Read twice by :func:`web_day_deltas` (callers
    that execute may materialise it first)."""
    e = events.filter(events.customer_id.notnull(), events.ts.notnull(), events.ts < periods.end_ts())
    day = e.ts.date().epoch_days().cast("int64")
    etype = e.event_type.lower()
    e = e.mutate(
        _day=day,
        _sess=e.session_id.cast("string").fill_null("day:" + day.cast("string")),
        _view=etype.isin(PRODUCT_VIEW_TYPES).fill_null(False).cast("int64"),
        _cart=etype.isin(CART_ADD_TYPES).fill_null(False).cast("int64"),
        _buy=etype.isin(PURCHASE_TYPES).fill_null(False).cast("int64"),
    )
    per_day = e.group_by(["customer_id", "_sess", "_day"]).aggregate(
        _views=e._view.sum(), _carts=e._cart.sum(), _buys=e._buy.sum()
    )
    return periods.lookup(per_day, "_day", {"_k": 0, "_b": DAYS_WEB})


#: The web measures each output column needs (its deltas are computed only when asked for).
NEEDS = {
    "visits_90d": ("_sess_90",),
    "product_views_90d": ("_views_90",),
    "cart_adds_90d": ("_carts_90",),
    "cart_abandonment_rate_90d": ("_cart_sess", "_both_sess"),
    "browse_to_buy_90d": ("_buy_sess", "_sess_90"),
    "days_since_last_visit": ("_last_visit",),
}


def web_day_deltas(d: ibis.Table, periods: Periods,
                   measures: Collection[str] | None = None) -> list[ibis.Table]:
    """The deltas of :func:`web_deltas` from the table of :func:`web_days`: of ``measures``
    only (names of :data:`SUMS` and :data:`MAXS`; default all of them)."""
    want = set(SUMS + MAXS if measures is None else measures)
    parts = []
    if want & {"_views_90", "_carts_90", "_last_visit"}:
        counts = d.group_by(["customer_id", "_k", "_b"]).aggregate(
            _views=d._views.sum(), _carts=d._carts.sum(), _last_visit=d._day.max()
        )
        views = live(counts._views, counts._k, counts._b)
        carts = live(counts._carts, counts._k, counts._b)
        parts += [
            emit(counts, counts._k, {"_last_visit": counts._last_visit, "_views_90": views,
                                     "_carts_90": carts}),
            emit(counts, counts._b, {"_views_90": views, "_carts_90": carts}, negate=True),
        ]
    sessions = [m for m in ("_sess_90", "_cart_sess", "_buy_sess", "_both_sess") if m in want]
    return parts + (_session_deltas(d, periods, sessions) if sessions else [])


def _session_deltas(d: ibis.Table, periods: Periods, measures: Sequence[str]) -> list[ibis.Table]:
    null = ibis.null("int64")
    ends = {"_bv": d._b}
    if {"_cart_sess", "_both_sess"} & set(measures):
        ends["_bc"] = ibis.ifelse(d._carts > 0, d._b, null)
    if {"_buy_sess", "_both_sess"} & set(measures):
        ends["_bb"] = ibis.ifelse(d._buys > 0, d._b, null)
    s = d.group_by(["customer_id", "_sess", "_k"]).aggregate(**{n: v.max() for n, v in ends.items()})
    w = ibis.cumulative_window(group_by=["customer_id", "_sess"], order_by="_k")
    nxt = s._k.lead().over(group_by=["customer_id", "_sess"], order_by="_k")
    s = s.mutate(**{n: s[n].max().over(w) for n in ends}, _next=nxt.fill_null(periods.n + 1))
    end_of = {"_sess_90": lambda: s._bv, "_cart_sess": lambda: s._bc, "_buy_sess": lambda: s._bb,
              # "has a cart add and a purchase" ends when the older of the two leaves the window
              "_both_sess": lambda: ibis.ifelse(s._bc.isnull() | s._bb.isnull(), null,
                                                ibis.least(s._bc, s._bb))}
    enters, parts = {}, []
    for name in measures:
        end = end_of[name]()
        stop = ibis.least(s._next, end)
        enters[name] = (end.notnull() & (stop > s._k)).cast("int64")
        x = s.mutate(_end=end, _stop=stop)
        x = x.filter(x._end.notnull(), x._stop > x._k)
        parts.append(emit(x, x._stop, {name: ibis.literal(1)}, negate=True))
    return [emit(s, s._k, enters), *parts]


SUMS = ("_views_90", "_carts_90", "_sess_90", "_cart_sess", "_buy_sess", "_both_sess")
MAXS = ("_last_visit",)
