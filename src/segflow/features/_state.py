"""The feature state: the running sums of the one pass at one snapshot, carried to the next.

:func:`segflow.features.snapshot_features` turns transactions and events into integer deltas
per (customer, period) and sums them over the periods (:mod:`segflow.features._periods`). The
running values at snapshot ``s_a`` (before any ratio is derived) are the *feature state*: one
row per customer, :data:`MEASURES`, all 64-bit integers (money and quantities in millionths,
days since 1970), so carrying it forward is exact.

The features at a later snapshot ``s_b`` are then the state at ``s_a`` plus the deltas of the
period ``[s_a, s_b)``, and only these rows produce such deltas (see the two module docstrings
of the one pass):

* transaction lines and web events of ``[s_a, s_b)`` (entering);
* lines whose day plus 365, 730 or ``window_days`` days falls in ``[s_a, s_b)`` (an order's
  or a return's amount leaving the 12 months, the previous 12 months, the window), and every
  line of an order one of these lines belongs to (an order's time is that of its first line,
  its amount the sum of all);
* web events from ``s_a - 90 days`` (a session's or an event's 90-day stretch can end in the
  period only if its last event is that recent).

:func:`next_state` reads only those rows (time-range filters on ``ts``, which the engine
prunes; the lines of the touched orders outside those ranges by a semi-join on
``(customer_id, transaction_id)``), computes their deltas with the one-pass functions on the
two-snapshot grid ``(s_a, s_b)`` and keeps those of period 2. :func:`state_features` derives
the features at ``s_b`` from the new state exactly as the one pass does, and takes the other
columns (``ipt_*``, top category / main channel, groups ``breadth``, ``seasonality``,
``campaign``, ``attribute``, ``survey``) from the readable per-snapshot functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import ibis

from segflow.errors import InputError
from segflow.features import _onepass_purchases as purchases
from segflow.features import _onepass_web as web
from segflow.features._attributes import customer_records
from segflow.features._behaviour import campaign_features
from segflow.features._breadth import breadth_features
from segflow.features._core import _ZERO_WHEN_ABSENT, REQUIRED_TABLES, _as_date, customer_features
from segflow.features._periods import Periods, union_deltas
from segflow.features._purchases import (
    interpurchase_features,
    order_table,
    prepare_lines,
    seasonality_features,
    top_share,
)
from segflow.features._survey import survey_features, survey_registry
from segflow.features._window import DAYS_12M, DAYS_WEB, EPOCH, Frame, left_join_all

#: The running measures of the state: sums, then minima, then maxima (int64 each).
SUMS = tuple(m for m in purchases.SUMS if m not in purchases.SEASON_SUMS) + web.SUMS
MINS = purchases.MINS
MAXS = purchases.MAXS + web.MAXS
MEASURES = SUMS + MINS + MAXS

#: Changes whenever the meaning of a stored state changes (a stored state of another
#: version is not used).
STATE_VERSION = 1


def state_key(window_days: int | None) -> str:
    """What a stored state depends on besides its snapshot and the data."""
    return f"v{STATE_VERSION};window_days={window_days}"


def feature_state(tables: Mapping[str, ibis.Table], snapshot: dt.date, *,
                  window_days: int | None = None) -> ibis.Table:
    """The feature state at ``snapshot`` from all history.

    Returns
    -------
    ibis.Table
        One row per customer id (string) with a transaction line or web event before
        ``snapshot``: ``customer_id`` and the int64 columns of :data:`MEASURES` (sums 0 when
        the customer has none of those rows; minima and maxima of days null).
    """
    periods = Periods((_as_date(snapshot),))
    return _fill(_deltas(tables["transactions"], tables["events"], periods, window_days, 1))


def next_state(tables: Mapping[str, ibis.Table], state: ibis.Table, state_date: dt.date,
               snapshot: dt.date, *, window_days: int | None = None) -> ibis.Table:
    """The feature state at ``snapshot`` from the ``state`` at ``state_date`` (earlier) and
    the rows that change it (module docstring); same shape as :func:`feature_state`.

    The caller guarantees that no row before ``state_date`` changed since ``state`` was
    computed (a run computing only its latest snapshot does).

    Raises
    ------
    InputError
        When ``snapshot`` is not after ``state_date``.
    """
    a, b = _as_date(state_date), _as_date(snapshot)
    if b <= a:
        raise InputError(f"the state at {a} cannot be carried back to {b}")
    t, e = tables["transactions"], tables["events"]
    ranges = [(a, b)] + [(a - dt.timedelta(days=d), b - dt.timedelta(days=d))
                         for d in {DAYS_12M, 2 * DAYS_12M, *([window_days] if window_days else [])}]
    inside = ibis.or_(*[(t.ts >= _ts(lo)) & (t.ts < _ts(hi)) for lo, hi in ranges])
    near = t.filter(inside)
    touched = near.filter(near.transaction_id.notnull(), near.customer_id.notnull())
    touched = touched.select("customer_id", "transaction_id").distinct()
    rest = t.filter(~inside, t.ts < _ts(b), t.transaction_id.notnull())
    rest = rest.semi_join(touched, ["customer_id", "transaction_id"])
    lines = ibis.union(near, rest, distinct=False)
    events = e.filter(e.ts >= _ts(a - dt.timedelta(days=DAYS_WEB)), e.ts < _ts(b))
    d = _deltas(lines, events, Periods((a, b)), window_days, 2)
    return _combine(state, d)


def state_features(tables: Mapping[str, ibis.Table], state: ibis.Table, snapshot: dt.date, *,
                   window_days: int | None = None) -> ibis.Table:
    """``customer_features(tables, snapshot, window_days=window_days)`` (every group, same
    columns, types and rows) with the one-pass columns derived from ``state``, the feature
    state at ``snapshot`` (:func:`feature_state` or :func:`next_state`)."""
    from segflow.features._snapshots import _features

    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise InputError(f"state_features needs the tables {', '.join(missing)}")
    s = _as_date(snapshot)
    schema = customer_features(tables, s, window_days=window_days).schema()
    sday = (s - EPOCH).days
    c = tables["customers"]
    c = c.filter(c.customer_id.notnull())
    created = c.group_by(_cid=c.customer_id.cast("string")).aggregate(_c=c.created_at.min())
    created = created.mutate(_cd=created._c.date().epoch_days().cast("int64"))
    created = created.filter(created._cd < sday).drop("_c")
    state = state.view()
    g = state.outer_join(created, state.customer_id == created._cid)
    g = g.mutate(customer_id=g.customer_id.fill_null(g._cid)).drop("_cid")
    g = g.filter(g._first_any.notnull() | g._cd.notnull())
    g = g.mutate(_k=ibis.literal(1, "int64"), _kc=ibis.literal(1, "int64"),
                 _sday=ibis.literal(sday, "int64"))
    g = g.mutate(**{m: g[m].fill_null(0) for m in SUMS})
    wanted = {"rfm", "pattern", "web"}
    derived = _features(g, wanted, set(schema))
    one_pass = g.select("customer_id", "orders_total", **derived)

    frame = Frame(snapshot=s, window_days=window_days)
    lines = prepare_lines(tables["transactions"], frame)
    orders = order_table(lines)
    records = customer_records(tables["customers"], frame)
    parts = [
        records.drop(*[n for n in records.columns if n.startswith("_") or n == "signup_date"]),
        interpurchase_features(orders, frame),
        top_share(lines, frame, "category", "top_category", "category_count"),
        top_share(lines, frame, "channel", "main_channel", "channel_count"),
        breadth_features(lines, frame),
        seasonality_features(orders),
        campaign_features(tables["campaign_exposures"], orders, frame),
    ]
    answers = survey_features(tables["survey_responses"], frame,
                              survey_registry(tables["survey_responses"]))
    if answers is not None:
        parts.append(answers)
    have = set(one_pass.columns)
    parts = [p.select("customer_id", *[n for n in p.columns if n in schema and n not in have])
             for p in parts]
    parts = [p.mutate(customer_id=p.customer_id.cast("string")) for p in parts]
    out = left_join_all(one_pass, parts)
    fills = {n: out[n].fill_null(0) for n in _ZERO_WHEN_ABSENT if n in schema}
    fills["same_season_flag"] = out.same_season_flag.fill_null(False)
    out = out.mutate(**fills)
    return out.select(**{name: out[name].cast(dtype) for name, dtype in schema.items()})


def _ts(day: dt.date) -> ibis.Scalar:
    return ibis.literal(dt.datetime.combine(day, dt.time()), type="timestamp")


def _deltas(transactions: ibis.Table, events: ibis.Table, periods: Periods,
            window_days: int | None, k: int) -> ibis.Table:
    """The state's deltas at period ``k`` of ``periods`` (one row per customer with any),
    from the given rows (customer ids as strings)."""
    t = transactions.mutate(customer_id=transactions.customer_id.cast("string"))
    e = events.mutate(customer_id=events.customer_id.cast("string"))
    lines = purchases.period_lines(t, periods)
    per = purchases.order_periods(lines, periods, window_days)
    parts = [
        *purchases.order_deltas(per, window_days),
        *purchases.line_deltas(lines, periods, window_days),
        *web.web_day_deltas(web.web_days(e, periods), periods),
    ]
    u = union_deltas(parts, MINS, MAXS, n=periods.n)
    u = u.filter(u._k == k)
    return u.select("customer_id", *MEASURES)


def _fill(t: ibis.Table) -> ibis.Table:
    return t.mutate(**{m: t[m].fill_null(0) for m in SUMS})


def _combine(state: ibis.Table, delta: ibis.Table) -> ibis.Table:
    """``state`` + ``delta`` per customer: sums added, minima and maxima combined."""
    d = delta.rename({f"_d{m}": m for m in MEASURES}).rename(_dcid="customer_id")
    state = state.view()
    j = state.outer_join(d, state.customer_id == d._dcid)

    def pick(m: str, fn) -> ibis.Value:  # noqa: ANN001
        a, b = j[m], j[f"_d{m}"]
        return ibis.ifelse(a.isnull(), b, ibis.ifelse(b.isnull(), a, fn(a, b)))

    return j.select(
        customer_id=j.customer_id.fill_null(j._dcid),
        **{m: j[m].fill_null(0) + j[f"_d{m}"].fill_null(0) for m in SUMS},
        **{m: pick(m, ibis.least) for m in MINS},
        **{m: pick(m, ibis.greatest) for m in MAXS},
    )
