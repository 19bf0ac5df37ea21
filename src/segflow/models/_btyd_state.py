"""The BTYD state: what the BTYD summaries need per customer, carried from run to run.

:func:`segflow.models.btyd_summary` groups every transaction line by customer and day. A run
that adds one month needs the summary at the new snapshot ``L`` and, for the CLV
diagnostics, the summary at ``C = L - 182 days`` with ``[C, L)`` held out and the window
``[C - 182 days, C)`` before it. All of these follow from the *state* of a customer at a
date ``D`` (purchase days before ``D``, :func:`segflow.models.purchase_days`):

``first_buy``, ``last_buy`` (dates, null without a purchase day), ``n_days`` (purchase days),
``spend`` (the exact decimal(38, 6) sum of the purchase days' spend, days whose spend a
decimal cannot hold left out), ``odd_days`` and ``odd_spend`` (the number and float sum of
the purchase days whose spend a decimal cannot hold: infinite, NaN, 1e30 or more; the spend
is then the sum of both parts, non-finite as :func:`segflow.models._summary.exact_sum`
keeps it for :func:`segflow.models.check_spend`), ``first_spend`` (the spend of
the first purchase day), ``return_days`` (return-only days) and ``negative_days`` (purchase
days with more returns than purchases), the last two for the summary's warnings.

The state of a set of days is a sum over its days (min/max for the dates, the first day's
spend from the earlier part), so ``state(D2) = combine(state(D1), state of days in [D1,
D2))``: a new month reads only the lines of ``[L0, L)``, ``[C0, C)`` and ``[P0, P)`` (the
previous run's dates ``L0, C0 = L0 - 182, P0 = L0 - 364`` each advanced by the same step)
and the lines on or after ``L`` (which only the warnings count). Holdout and last-period
counts are differences of states: ``x_holdout = n_days(L) - n_days(C)``, its spend the exact
difference of the decimal sums.

The tracking curves of the diagnostics count repeat purchase days per day among customers
acquired before ``C``; they read ``repeat_days``: one row per (``day``, ``first_buy``) with
``n`` repeat purchase days that day of customers whose first purchase day is ``first_buy``
(``day > first_buy``), of days before ``L``; a new month appends its own days' rows.

Stored in the store's tables ``btyd_state`` (``state_key``, ``as_of``, ``customer_id`` and
the columns above; rows at the three dates) and ``btyd_repeat_days``, replaced whole by
every DuckDB run with CLV scores (:func:`write_states`), created by the first one (no
schema migration: a store without them computes the state from all history).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.expr.types import CachedTable

from segflow.features._window import money

#: What the stored rows hold; a run only carries a state stored under the same key.
STATE_KEY = "btyd-v1"
#: Days between the three dates of the state (the diagnostics' 26 holdout weeks).
HOLDOUT_DAYS = 182
DECIMAL = "decimal(38, 6)"
COLUMNS = ("first_buy", "last_buy", "n_days", "spend", "odd_spend", "odd_days",
           "first_spend", "return_days", "negative_days")


def state_dates(as_of: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """The dates of the states a run keeps: ``as_of - 364 d, as_of - 182 d, as_of``."""
    step = dt.timedelta(days=HOLDOUT_DAYS)
    return as_of - 2 * step, as_of - step, as_of


def _odd(value: ir.FloatingValue) -> ir.BooleanValue:
    return value.isnan() | value.isinf() | (value.abs() >= 1e30)


def day_state(days: ir.Table, by: tuple[str, ...] = ("customer_id",)) -> ir.Table:
    """The state of the days in ``days`` (rows of :func:`segflow.models.purchase_days`)
    per ``by`` (``customer_id``, and e.g. a part of time): ``by`` + :data:`COLUMNS`."""
    buy, amount = days.purchase, days.amount
    odd = _odd(amount)
    return days.group_by(list(by)).aggregate(
        first_buy=days.day.min(where=buy),
        last_buy=days.day.max(where=buy),
        n_days=buy.cast("int64").sum(),
        spend=money(ibis.ifelse(buy & ~odd, amount, ibis.null("float64"))).sum()
        .fill_null(ibis.literal(0, DECIMAL)).cast(DECIMAL),
        odd_spend=amount.sum(where=buy & odd).fill_null(0.0),
        odd_days=(buy & odd).cast("int64").sum(),
        first_spend=amount.argmin(days.day, where=buy),
        return_days=(~buy).cast("int64").sum(),
        negative_days=(buy & (days.net_amount < 0)).cast("int64").sum(),
    )


def combine(*states: ir.Table) -> ir.Table:
    """The state of the union of the (disjoint) day sets whose states are ``states``."""
    u = ibis.union(*[s.select("customer_id", *COLUMNS) for s in states], distinct=False)
    return u.group_by("customer_id").aggregate(
        first_buy=u.first_buy.min(),
        last_buy=u.last_buy.max(),
        n_days=u.n_days.sum(),
        spend=u.spend.sum().cast(DECIMAL),
        odd_spend=u.odd_spend.sum(),
        odd_days=u.odd_days.sum(),
        first_spend=u.first_spend.argmin(u.first_buy, where=u.first_buy.notnull()),
        return_days=u.return_days.sum(),
        negative_days=u.negative_days.sum(),
    )


def _total(state: ir.Table) -> ir.FloatingValue:
    """The spend of a state: the exact sum, plus the days a decimal cannot hold (the float
    sum of all days in :func:`segflow.models._summary.exact_sum`: the same when the odd days
    are infinite or NaN, the last bits may differ for finite ones of 1e30 or more)."""
    exact = state.spend.cast("float64")
    return ibis.ifelse(state.odd_days > 0, exact + state.odd_spend, exact)


def _difference(late: ir.Table, early: ir.Table, prefix: str) -> dict[str, ir.Value]:
    """Purchase days and spend between two states of the same customers (early left-joined:
    columns of ``early`` named ``prefix + column``)."""
    odd = late.odd_days - early[f"{prefix}odd_days"].fill_null(0) > 0  # odd days in between
    exact = (late.spend - early[f"{prefix}spend"].fill_null(ibis.literal(0, DECIMAL))).cast("float64")
    floats = late.odd_spend - early[f"{prefix}odd_spend"].fill_null(0.0)
    return {"n": (late.n_days - early[f"{prefix}n_days"].fill_null(0)).cast("int64"),
            "spend": ibis.ifelse(odd, exact + floats, exact)}


@dataclasses.dataclass
class BTYDStates:
    """The states at :func:`state_dates` of ``as_of`` (cached tables), the repeat purchase
    days before ``as_of`` and the state of the days on or after it (``tail``)."""

    as_of: dt.date
    states: dict[dt.date, ir.Table]
    repeat_days: ir.Table
    tail: ir.Table | None = None

    def summary(self, calibration_end: dt.date, *, time_unit: str = "W") -> ir.Table:
        """:func:`segflow.models.btyd_summary` without holdout at a date of the states."""
        from segflow.models._summary import unit_days

        unit = unit_days(time_unit)
        st = self.states[calibration_end]
        st = st.filter(st.first_buy.notnull())
        x = (st.n_days - 1).cast("int64")
        last_cal_day = calibration_end - dt.timedelta(days=1)
        repeat_spend = _total(st) - st.first_spend
        return st.select(
            customer_id=st.customer_id,
            x=x,
            t_x=st.last_buy.delta(st.first_buy, unit="day").cast("float64") / unit,
            T=ibis.literal(last_cal_day).delta(st.first_buy, unit="day").cast("float64") / unit,
            monetary_value=ibis.ifelse(x > 0, repeat_spend / x.cast("float64"),
                                       ibis.null("float64")),
            first_purchase=st.first_buy,
        )

    def holdout_summary(self, calibration_end: dt.date, observation_end: dt.date, *,
                        time_unit: str = "W") -> ir.Table:
        """:func:`segflow.models.btyd_summary` with ``observation_end`` (the holdout), when
        ``observation_end`` and ``2 * calibration_end - observation_end`` are dates of the
        states too."""
        from segflow.models._summary import unit_days

        window_start = calibration_end - (observation_end - calibration_end)
        summary = self.summary(calibration_end, time_unit=time_unit)
        late = self.states[observation_end]
        cal = self.states[calibration_end]
        early = self.states[window_start]
        cal = cal.filter(cal.first_buy.notnull())
        hold = cal.select("customer_id", *[cal[c].name(f"c_{c}") for c in COLUMNS])
        hold = late.inner_join(hold, "customer_id")
        held = _difference(hold, hold, "c_")
        hold = hold.select("customer_id", x_holdout=held["n"], holdout_spend=held["spend"])
        last = cal.left_join(early.select("customer_id", *[early[c].name(f"e_{c}") for c in COLUMNS]),
                             "customer_id")
        lasted = _difference(last, last, "e_")
        last = last.select(last.customer_id, x_last_period=lasted["n"],
                           last_period_spend=lasted["spend"])
        joined = summary.inner_join(hold, "customer_id").inner_join(last, "customer_id")
        return joined.select(
            *[joined[c] for c in summary.columns],
            x_holdout=joined.x_holdout, holdout_spend=joined.holdout_spend,
            x_last_period=joined.x_last_period, last_period_spend=joined.last_period_spend,
            duration_holdout=ibis.literal((observation_end - calibration_end).days
                                          / unit_days(time_unit), type="float64"),
        )

    def exclusion_counts(self, calibration_end: dt.date) -> dict[str, int]:
        """The counts :func:`segflow.models._summary._warn_exclusions` warns about, over
        every day (the state at ``as_of`` and the days after it)."""
        per = self.states[self.as_of] if self.tail is None else combine(
            self.states[self.as_of], self.tail)
        row = per.aggregate(
            customers=per.count(),
            born_after=(per.first_buy >= calibration_end).cast("int64").sum(),
            only_returns=per.first_buy.isnull().cast("int64").sum(),
            nonpositive_days=per.return_days.sum(),
            net_negative_days=per.negative_days.sum(),
        ).execute().iloc[0].fillna(0)
        return {k: int(v) for k, v in row.items()}

    def release(self) -> None:
        """Drop the cached tables (the lazy ones of :func:`stored_states` hold nothing)."""
        for table in (*self.states.values(), self.repeat_days, self.tail):
            if isinstance(table, CachedTable):
                table.release()


def _parts(days: ir.Table, bounds: list[tuple[dt.date, dt.date | None]]) -> ir.Table:
    """``day_state`` of the days in each ``[start, end)`` of ``bounds`` (end None: no end),
    one grouping: ``customer_id, part`` (the index in ``bounds``) + :data:`COLUMNS`."""
    part = ibis.null("int64")
    for i, (start, end) in reversed(list(enumerate(bounds))):
        inside = days.day >= start if end is None else (days.day >= start) & (days.day < end)
        part = ibis.ifelse(inside, ibis.literal(i, "int64"), part)
    tagged = days.mutate(part=part)
    return day_state(tagged.filter(tagged.part.notnull()), by=("customer_id", "part"))


def _repeats(days: ir.Table, state: ir.Table) -> ir.Table:
    """Repeat purchase days of ``days`` per (``day``, ``first_buy``), the first purchase
    days from ``state``: ``day, first_buy, n``."""
    bought = days.filter(days.purchase)
    firsts = state.select("customer_id", "first_buy")
    rep = bought.inner_join(firsts, "customer_id")
    rep = rep.filter(rep.day > rep.first_buy)
    return rep.group_by(["day", "first_buy"]).aggregate(n=rep.count())


def full_states(days: ir.Table, as_of: dt.date) -> BTYDStates:
    """The states at :func:`state_dates` of ``as_of`` from ``days``
    (:func:`segflow.models.purchase_days` of every day): one grouping of the days."""
    dates = state_dates(as_of)
    bounds = [(dt.date.min, dates[0]), (dates[0], dates[1]), (dates[1], dates[2]),
              (dates[2], None)]
    parts = _parts(days, bounds).cache()
    try:
        states = {d: combine(parts.filter(parts.part <= i)).cache() for i, d in enumerate(dates)}
        tail = parts.filter(parts.part == 3).drop("part").cache()
    finally:
        parts.release()
    repeat = _repeats(days.filter(days.day < as_of), states[as_of]).cache()
    return BTYDStates(as_of, states, repeat, tail)


def advanced_states(prior: BTYDStates, transactions: ir.Table, as_of: dt.date) -> BTYDStates:
    """``prior`` carried to ``as_of``: each of its states advanced by the purchase days
    between its date and the new one (same step), read from the lines of those ranges and
    the lines on or after ``as_of`` only."""
    from segflow.models._summary import purchase_days

    old, new = state_dates(prior.as_of), state_dates(as_of)
    bounds: list[tuple[dt.date, dt.date | None]] = [*zip(old, new, strict=True), (as_of, None)]
    ts = transactions.ts

    def at(day: dt.date) -> ir.Value:
        return ibis.literal(dt.datetime.combine(day, dt.time()), "timestamp")

    inside = ts >= at(as_of)
    for start, end in bounds[:-1]:
        inside |= (ts >= at(start)) & (ts < at(end))
    days = purchase_days(transactions.filter(inside), end=None).cache()
    try:
        parts = _parts(days, bounds).cache()
        try:
            states = {d: combine(prior.states[o], parts.filter(parts.part == i).drop("part")).cache()
                      for i, (o, d) in enumerate(zip(old, new, strict=True))}
            tail = parts.filter(parts.part == 3).drop("part").cache()
        finally:
            parts.release()
        month = days.filter((days.day >= prior.as_of) & (days.day < as_of))
        repeat = ibis.union(prior.repeat_days, _repeats(month, states[as_of]),
                            distinct=False).cache()
    finally:
        days.release()
    return BTYDStates(as_of, states, repeat, tail)


# -- the store ----------------------------------------------------------------------------
def stored_states(store: Any, transactions: ir.Table, as_of: dt.date) -> BTYDStates | None:
    """The stored states at :func:`state_dates` of ``as_of`` (lazy tables on the store; no
    ``tail``), or None when the store holds none for those dates under :data:`STATE_KEY`
    or ``transactions`` are not on the store's own DuckDB."""
    if store is None or transactions._find_backend() is not store.con:
        return None
    if not {"btyd_state", "btyd_repeat_days"} <= set(store.tables()):
        return None
    rows = store.raw.execute("SELECT DISTINCT state_key, as_of FROM btyd_state").fetchall()
    if sorted(rows) != [(STATE_KEY, d) for d in state_dates(as_of)]:
        return None
    table = store.table("btyd_state")
    states = {d: table.filter(table.as_of == ibis.literal(d, "date")).select("customer_id", *COLUMNS)
              for d in state_dates(as_of)}
    return BTYDStates(as_of, states, store.table("btyd_repeat_days"))


def write_states(store: Any, states: BTYDStates) -> None:
    """Replace the stored states by ``states`` (in a transaction of its own)."""
    parts = [states.states[d].select(
        state_key=ibis.literal(STATE_KEY), as_of=ibis.literal(d, "date"), customer_id=ibis._.customer_id,
        **{c: ibis._[c] for c in COLUMNS}) for d in state_dates(states.as_of)]
    rows = store.con.compile(ibis.union(*parts, distinct=False))
    repeat = store.con.compile(states.repeat_days.select("day", "first_buy", "n"))
    with store.transaction() as con:
        con.execute(f"CREATE OR REPLACE TABLE btyd_state AS {rows}")
        con.execute(f"CREATE OR REPLACE TABLE btyd_repeat_days AS {repeat}")


def drop_states(store: Any) -> None:
    """Remove the stored states (a run that could not compute them)."""
    if store is None or not hasattr(store, "transaction"):
        return
    with store.transaction() as con:
        con.execute("DROP TABLE IF EXISTS btyd_state")
        con.execute("DROP TABLE IF EXISTS btyd_repeat_days")
