"""The feature state: the running sums of the one pass at one snapshot, carried to the next.

:func:`segflow.features.snapshot_features` turns transactions into exact deltas per
(customer, period) and sums them over the periods (:mod:`segflow.features._periods`). The
running values at snapshot ``s_a`` (before any ratio is derived) are the *feature state*: one
row per customer, :data:`MEASURES`, all exact (counts and days since 1970 64-bit integers,
money and quantities decimals of six places, :data:`MONEY`), so carrying it forward is
exact.

The features at a later snapshot ``s_b`` are then the state at ``s_a`` plus the deltas of the
period ``[s_a, s_b)``, and only these transaction rows produce such deltas (see the module
docstring of :mod:`segflow.features._onepass_purchases`):

* lines of ``[s_a, s_b)`` (entering);
* lines whose day plus 365, 730 or ``window_days`` days falls in ``[s_a, s_b)`` (an order's
  or a return's amount leaving the 12 months, the previous 12 months, the window), and every
  line of an order one of these lines belongs to (an order's time is that of its first line,
  its amount the sum of all).

:func:`next_state` reads only those rows (filters on ``ts``; the lines of the touched orders
outside those ranges by a semi-join on ``(customer_id, transaction_id)``), computes their
deltas with the one-pass functions on the two-snapshot grid ``(s_a, s_b)`` and keeps those of
period 2. Seasonality needs, besides its running sums, the orders per quarter of the current
calendar year (``_yc*``: the flags of a year change with its own counts); the inter-purchase
gaps (all history, i.e. without ``window_days``) the number of distinct order days and the
sum of their squared gaps, plus the gap from the state's last order day to the first new one.

:func:`state_features` derives the features at ``s_b`` from the state exactly as the one pass
does (groups ``rfm``, ``seasonality``, the order-value columns of ``pattern`` and, without
``window_days``, ``ipt_*``) and takes the others from the readable per-snapshot functions:
top category / main channel, groups ``breadth``, ``web`` (its 90-day window is cheaper to
read again than to carry: a session's stretch needs the events from 90 days before ``s_a``),
``campaign``, ``attribute`` and ``survey``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import ibis

from segflow._dates import as_date
from segflow.errors import InputError
from segflow.features import _onepass_purchases as purchases
from segflow.features._attributes import customer_records
from segflow.features._behaviour import campaign_features, web_features
from segflow.features._breadth import breadth_features
from segflow.features._core import (
    _ZERO_WHEN_ABSENT,
    REQUIRED_TABLES,
    KnownSchema,
    customer_features,
)
from segflow.features._derive import one_pass_features
from segflow.features._periods import Periods, union_deltas
from segflow.features._purchases import (
    interpurchase_features,
    interpurchase_values,
    order_table,
    prepare_lines,
    top_share,
    value_spend,
)
from segflow.features._survey import survey_features, survey_registry
from segflow.features._window import DAYS_12M, EPOCH, Frame, left_join_all

#: The running measures of the state (int64 each, but decimal(38, 6) for :data:`MONEY`):
#: sums (those of the one pass, with the
#: seasonality counts ``_q*``, ``_dbad*``, ``_years``; ``_ndays`` distinct order days and
#: ``_gap2`` the sum of squared gaps between them, for ``ipt_*``), minima, maxima, and the
#: orders per quarter of the calendar year of the state's last day (``_yc*``: where the
#: seasonality of the next period's orders starts).
_SEASON = tuple(f"_q{q}" for q in range(1, 5))
_BAD = (*[f"_dbad{q}" for q in range(1, 5)], "_years")
_YEAR = tuple(f"_yc{q}" for q in range(1, 5))
SUMS = (tuple(m for m in purchases.SUMS if m not in purchases.SEASON_SUMS) + _SEASON + _BAD
        + ("_ndays",))
MINS = purchases.MINS
MAXS = purchases.MAXS
MEASURES = SUMS + ("_gap2",) + MINS + MAXS + _YEAR
#: The money measures (amounts and quantities), :data:`segflow.features._window.EXACT_MONEY`.
MONEY = ("_gross_w", "_qty_w", "_gross_12", "_gross_prev", "_ret_w", "_ret_12", "_ret_prev")

#: Changes whenever the meaning of a stored state changes (a stored state of another
#: version is not used). 4: money as decimal(38, 6), no longer int64 millionths.
STATE_VERSION = 4


def state_key(window_days: int | None) -> str:
    """What a stored state depends on besides its snapshot and the data."""
    return f"v{STATE_VERSION};window_days={window_days}"


def feature_state(tables: Mapping[str, ibis.Table], snapshot: dt.date, *,
                  window_days: int | None = None) -> ibis.Table:
    """The feature state at ``snapshot`` from all history (the readable definition; a run
    of every snapshot takes it from its one pass instead,
    :func:`segflow.features._snapshots.snapshot_features_and_state`).

    Returns
    -------
    ibis.Table
        Materialised (``release()`` it when done): one row per customer id (string) with a
        transaction line before ``snapshot``: ``customer_id`` and the columns of
        :data:`MEASURES` (int64; decimal(38, 6) for :data:`MONEY`; sums 0 when the customer
        has none of those rows; minima and maxima of days null).
    """
    periods = Periods((as_date(snapshot),))
    return _deltas(tables["transactions"], periods, window_days, 1, keep_years=False)[0]


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
    a, b = as_date(state_date), as_date(snapshot)
    if b <= a:
        raise InputError(f"the state at {a} cannot be carried back to {b}")
    t = tables["transactions"]
    ranges = [(a, b)] + [(a - dt.timedelta(days=d), b - dt.timedelta(days=d))
                         for d in {DAYS_12M, 2 * DAYS_12M, *([window_days] if window_days else [])}]
    inside = ibis.or_(*[(t.ts >= _ts(lo)) & (t.ts < _ts(hi)) for lo, hi in ranges])
    near = t.filter(inside)
    touched = near.filter(near.transaction_id.notnull(), near.customer_id.notnull())
    touched = touched.select("customer_id", "transaction_id").distinct()
    rest = t.filter(~inside, t.ts < _ts(b), t.transaction_id.notnull())
    # the keys of touched orders with lines outside the ranges first (two narrow columns
    # read from every line; usually none), then those lines with all their columns
    spanning = rest.select("customer_id", "transaction_id")
    spanning = spanning.semi_join(touched, ["customer_id", "transaction_id"]).distinct()
    rest = rest.semi_join(spanning, ["customer_id", "transaction_id"])
    lines = ibis.union(near, rest, distinct=False)
    d, years = _deltas(lines, Periods((a, b)), window_days, 2, keep_years=True)
    return _combine(state, d, years, _year(a), _year(b))


def state_features(tables: Mapping[str, ibis.Table], state: ibis.Table, snapshot: dt.date, *,
                   window_days: int | None = None, known: KnownSchema | None = None,
                   ) -> ibis.Table:
    """``customer_features(tables, snapshot, window_days=window_days)`` (every group, same
    columns, types and rows) with the one-pass columns derived from ``state``, the feature
    state at ``snapshot`` (:func:`feature_state` or :func:`next_state`); ``known``: the
    survey registry and features schema when the caller has them (default: read, built)."""
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise InputError(f"state_features needs the tables {', '.join(missing)}")
    s = as_date(snapshot)
    known = known or KnownSchema()
    survey = (known.survey if known.survey is not None
              else survey_registry(tables["survey_responses"]))
    schema = known.schema
    if schema is None:
        schema = customer_features(tables, s, window_days=window_days, survey=survey).schema()
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
    wanted = {"rfm", "pattern", "seasonality"}
    derived = one_pass_features(g, wanted, set(schema))
    if window_days is None:
        derived |= _interpurchase(g)
    one_pass = g.select("customer_id", "orders_total", **derived)

    frame = Frame(snapshot=s, window_days=window_days)
    lines = prepare_lines(tables["transactions"], frame)
    records = customer_records(tables["customers"], frame)
    # without a window the top category and the category breadth group the same lines
    spend = value_spend(lines, frame, "category") if window_days is None else None
    parts = [
        records.drop(*[n for n in records.columns if n.startswith("_") or n == "signup_date"]),
        top_share(lines, frame, "category", "top_category", "category_count", spend=spend),
        top_share(lines, frame, "channel", "main_channel", "channel_count"),
        breadth_features(lines, frame, categories=spend),
        campaign_features(tables["campaign_exposures"], lines, frame),
        # the 90-day web counts: cheaper from the window's events than carried (their
        # sessions' stretches need the events from 90 days before the state on)
        web_features(tables["events"], frame),
    ]
    if window_days is not None:  # the gaps of orders leaving a window: not in the state
        parts.append(interpurchase_features(order_table(lines), frame))
    answers = survey_features(tables["survey_responses"], frame, survey)
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


def _interpurchase(g: ibis.Table) -> dict[str, ibis.Value]:
    """``ipt_mean_days`` and ``ipt_cv`` over all history from the distinct order days
    (``_ndays``), their span and the sum of squared gaps
    (:func:`segflow.features._purchases.interpurchase_values`)."""
    return interpurchase_values(g._ndays, g._first, g._last, g._gap2)


def _year(day: dt.date) -> int:
    """The calendar year of the last day before ``day`` (of the period ending there)."""
    return (day - dt.timedelta(days=1)).year


def _ts(day: dt.date) -> ibis.Scalar:
    return ibis.literal(dt.datetime.combine(day, dt.time()), type="timestamp")


def _deltas(transactions: ibis.Table, periods: Periods, window_days: int | None, k: int,
            *, keep_years: bool) -> tuple[ibis.Table, ibis.Table | None]:
    """The state's deltas at period ``k`` of ``periods`` (``k`` = 1: the state at the last
    snapshot, ``customer_id`` and :data:`MEASURES`), from the given rows (customer ids as
    strings), cached; with ``keep_years`` (for :func:`next_state`) also ``_dmin`` and the
    orders first seen at ``k`` per customer and calendar year ``_y`` and quarter (``_c1``
    ... ``_c4``), cached (else None). The intermediate tables are released."""
    t = transactions.mutate(customer_id=transactions.customer_id.cast("string"))
    # materialised: each is read by several delta parts (as in the one pass's chunks)
    lines = purchases.period_lines(t, periods).cache()
    per = purchases.order_periods(lines, periods, window_days).cache()
    d, years = period_deltas(lines, per, periods, window_days, k)
    years = years.cache() if keep_years else None
    out = (d if keep_years else d.select("customer_id", *MEASURES)).cache()
    for table in (lines, per):
        table.release()
    return out, years


def period_deltas(lines: ibis.Table, per: ibis.Table, periods: Periods,
                  window_days: int | None, since: int,
                  grouped: Sequence[ibis.Table] = (),
                  season: ibis.Table | None = None) -> tuple[ibis.Table, ibis.Table]:
    """The state's deltas of the periods ``since`` ... ``n`` of ``periods`` summed per
    customer (minima, maxima combined), from the period-tagged lines and order periods of
    :mod:`segflow.features._onepass_purchases` (any customer key type); ``since`` = 1 gives
    the feature state at the last snapshot (sums 0, ``_dmin`` included), ``since`` = 2 of a
    two-snapshot grid the delta :func:`next_state` adds. Also the orders first seen in those
    periods per customer, calendar year ``_y`` and quarter (``_c1`` ... ``_c4``). Both lazy:
    the caller materialises them while ``lines`` and ``per`` exist.

    ``grouped``: the order and line deltas already summed per (customer, period), as the one
    pass's chunk holds them (:func:`segflow.features._periods.union_deltas` of
    :func:`~segflow.features._onepass_purchases.order_deltas` and of
    :func:`~segflow.features._onepass_purchases.line_deltas`, periods up to ``n``): summed
    again over the periods instead of computed a second time (the same sums, minima and
    maxima: a sum of per-period sums is the sum); ``season``: likewise the chunk's
    :func:`~segflow.features._onepass_purchases.season_deltas` (``since`` = 1 only)."""
    n = periods.n
    o = per.filter(per._cnt == 1, per._k >= since)
    o = o.mutate(_y=o._ot.year().cast("int64"), _qq=o._ot.quarter())
    quarters = {f"_c{q}": o.count(where=o._qq == q) for q in range(1, 5)}
    years = o.group_by(["customer_id", "_y"]).aggregate(**quarters)
    last = _year(periods.dates[-1])
    if not grouped:
        grouped = [*purchases.order_deltas(per, window_days),
                   *purchases.line_deltas(lines, periods, window_days)]
    parts = [
        *grouped,
        years.group_by("customer_id").aggregate(
            _k=ibis.literal(since, "int64"),
            **{f"_q{q}": years[f"_c{q}"].sum() for q in range(1, 5)},
            **{f"_yc{q}": years[f"_c{q}"].sum(where=years._y == last) for q in range(1, 5)},
        ),
        _order_days(o, since),
    ]
    if since == 1:  # all history: the seasonality flags of the one pass
        season = purchases.season_deltas(per) if season is None else season
        parts.append(season.select("customer_id", "_k", *_BAD))
    # every period from `since` on counts as one (window ends after the last: never)
    parts = [p.filter(p._k >= since, p._k <= n).mutate(_k=ibis.literal(since, "int64"))
             for p in parts]
    u = union_deltas(parts, (*MINS, "_dmin"), MAXS)
    u = u.mutate(**{m: u[m].fill_null(0) for m in (*SUMS, "_gap2", *_YEAR) if m in u.columns})
    cols = [c for c in (*MEASURES, "_dmin") if c in u.columns]
    return u.select("customer_id", *cols), years


def _order_days(o: ibis.Table, k: int) -> ibis.Table:
    """Distinct order days of the orders ``o`` per customer: their number, first day and the
    sum of squared gaps between consecutive ones."""
    d = o.select("customer_id", "_od").distinct()
    gap = d._od - d._od.lag().over(group_by="customer_id", order_by="_od")
    d = d.mutate(_g=gap)
    return d.group_by("customer_id").aggregate(
        _k=ibis.literal(k, "int64"), _ndays=d._od.count(), _gap2=(d._g * d._g).sum(),
        _dmin=d._od.min(),
    )


def _combine(state: ibis.Table, delta: ibis.Table, years: ibis.Table, year_a: int,
             year_b: int) -> ibis.Table:
    """``state`` (whose last day is in ``year_a``) + ``delta`` (a period whose last day is
    in ``year_b``) per customer: sums added, minima and maxima combined; the seasonality
    flags from the state's counts of ``year_a`` and the new orders per year (``years``, as
    ``_season_deltas`` of the one pass); the squared gaps with the gap from the state's last
    order day to the first new one; the counts of ``year_b``."""
    state = state.view()
    sy = state.select(_scid=state.customer_id, **{m: state[m] for m in _YEAR})
    y = years.left_join(sy, years.customer_id == sy._scid)
    prev = {q: ibis.ifelse(y._y == year_a, y[f"_yc{q}"].fill_null(0), 0) for q in range(1, 5)}
    tot0 = prev[1] + prev[2] + prev[3] + prev[4]
    cur = {q: prev[q] + y[f"_c{q}"] for q in range(1, 5)}
    tot1 = cur[1] + cur[2] + cur[3] + cur[4]
    flags = y.select(
        "customer_id",
        **{f"_dbad{q}": ((cur[q] * 2 < tot1).cast("int64")
                         - ((tot0 > 0) & (prev[q] * 2 < tot0)).cast("int64")) for q in range(1, 5)},
        _years=(tot0 == 0).cast("int64"),
    )
    flags = flags.group_by("customer_id").aggregate(**{m: flags[m].sum() for m in _BAD})
    d = delta.drop(*_BAD) if set(_BAD) & set(delta.columns) else delta
    f = flags.rename(_fcid="customer_id")
    d = d.left_join(f, d.customer_id == f._fcid).drop("_fcid")
    keep = [m for m in d.columns if m != "customer_id"]
    d = d.rename({f"_d{m}": m for m in keep}).rename(_dcid="customer_id")
    j = state.outer_join(d, state.customer_id == d._dcid)

    def pick(m: str, fn) -> ibis.Value:  # noqa: ANN001
        a, b = j[m], j[f"_d{m}"]
        return ibis.ifelse(a.isnull(), b, ibis.ifelse(b.isnull(), a, fn(a, b)))

    link = j._d_dmin - j._last  # from the state's last order day to the first new one
    return j.select(
        customer_id=j.customer_id.fill_null(j._dcid),
        **{m: j[m].fill_null(0) + j[f"_d{m}"].fill_null(0) for m in SUMS},
        _gap2=j._gap2.fill_null(0) + j._d_gap2.fill_null(0) + (link * link).fill_null(0),
        **{m: pick(m, ibis.least) for m in MINS},
        **{m: pick(m, ibis.greatest) for m in MAXS},
        **{f"_yc{q}": (j[f"_yc{q}"].fill_null(0) if year_a == year_b else 0)
           + j[f"_d_yc{q}"].fill_null(0) for q in range(1, 5)},
    )
