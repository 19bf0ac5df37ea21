"""Net amounts per customer and period, stored by the run so that a new month does not read
every transaction again for the aggregates' revenue.

The aggregates' revenue (:mod:`segflow.summaries._revenue`) cuts time at *boundaries*: the
snapshot dates and the dates 365 days before them (:func:`boundaries`). A customer's
*period amount* at boundary ``b`` is the net amount (float64, currency units, returns netted)
of the customer's lines with ``b' <= ts < b``, ``b'`` the boundary before ``b`` (lines before
the first boundary belong to it; lines at or after the last boundary to none): a table
``customer_id, period_end, amount`` (:func:`period_amounts`), one row per customer and
period with lines; anonymous lines are left out.

The run stores that table (``summary_amounts``, its boundaries in ``summary_amount_periods``)
in the aggregates' transaction. A later run reads it back when no transaction before its last
boundary changed since (``unchanged_before``, see :func:`segflow.summaries.write_aggregates`)
and the new boundaries contain the stored ones: then only the lines from the stored last
boundary on, and those of a stored period a new boundary splits (a new ``L - 365 days``
falling inside a month), are read and grouped (:func:`prepare`). One new month reads a month
or two of lines instead of all history. Else everything is computed again from the
transactions (the same table: one grouping of the lines).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import ibis

from segflow.features import money_sum
from segflow.summaries._revenue import REVENUE_WINDOW_DAYS, boundaries, period_amounts

TABLE, PERIODS = "summary_amounts", "summary_amount_periods"


def _ts(day: dt.date) -> ibis.Scalar:
    return ibis.timestamp(dt.datetime.combine(day, dt.time()))


@dataclasses.dataclass
class Amounts:
    """The period amounts a run reads (:attr:`table`: ``customer_id, period_end, amount`` on
    the store's DuckDB, at :attr:`bounds`) and what it stores of them (:meth:`write`)."""

    table: ibis.Table
    bounds: list[dt.date]
    #: rows computed by this run (cached): every row (``full``) or those of the new periods
    computed: ibis.Table
    full: bool
    #: stored period ends whose rows ``computed`` replaces (split periods)
    replaced: list[dt.date]

    def write(self, store: Any, con: Any) -> int:
        """Store :attr:`table` inside the transaction ``con``: replace every row (``full``) or
        delete the replaced periods and append the computed rows; the boundaries replaced.
        Returns the rows written."""
        sql = store.con.compile(self.computed)
        if self.full:
            con.execute(f"DELETE FROM {TABLE}")
        elif self.replaced:
            con.execute(f"DELETE FROM {TABLE} WHERE period_end IN (SELECT unnest(?::DATE[]))",
                        [self.replaced])
        n = con.execute(f"INSERT INTO {TABLE} SELECT customer_id, period_end, amount FROM ({sql})"
                        ).fetchone()[0]
        con.execute(f"DELETE FROM {PERIODS}")
        con.execute(f"INSERT INTO {PERIODS} SELECT unnest(?::DATE[])", [self.bounds])
        return int(n)

    def release(self) -> None:
        self.computed.release()


def prepare(store: Any, dates: Sequence[dt.date], unchanged_before: dt.datetime | None) -> Amounts | None:
    """The period amounts at the boundaries of ``dates`` (every snapshot of the run), from the
    stored ones extended by the lines they lack when ``unchanged_before`` (no transaction
    before it changed since they were stored) covers them, else from every transaction.
    None on a store without the tables (a Spark warehouse's run)."""
    if not dates or TABLE not in store.tables() or not hasattr(store, "raw"):
        return None
    bounds = boundaries(dates)
    transactions = store.table("transactions")
    old = sorted(r[0] for r in store.raw.execute(f"SELECT period_end FROM {PERIODS}").fetchall())
    usable = (bool(old) and unchanged_before is not None and set(old) <= set(bounds)
              and unchanged_before >= dt.datetime.combine(old[-1], dt.time()))
    if not usable:
        computed = period_amounts(transactions, bounds).cache()
        return Amounts(computed, bounds, computed, True, [])
    # the lines to read again: from the stored last boundary on, and those of every stored
    # period a new boundary splits (from the boundary before it, or from the start)
    ranges: list[tuple[dt.date | None, dt.date]] = []
    replaced: list[dt.date] = []
    for b in bounds:
        if b < old[-1] and b not in old:
            hi = min(x for x in old if x > b)
            lo = max((x for x in old if x < b), default=None)
            if hi not in replaced:
                replaced.append(hi)
                ranges.append((lo, hi))
    if bounds[-1] > old[-1]:
        ranges.append((old[-1], bounds[-1]))
    stored = store.table(TABLE)
    # nullable types, as computed (the stored columns are NOT NULL)
    stored = stored.select(customer_id=stored.customer_id.cast("string"),
                           period_end=stored.period_end.cast("date"), amount=stored.amount.cast("float64"))
    if replaced:
        stored = stored.filter(~stored.period_end.isin([ibis.literal(d, "date") for d in replaced]))
    if not ranges:
        computed = stored.limit(0).cache()
        return Amounts(stored, bounds, computed, False, [])
    t = transactions
    inside = ibis.or_(*[(t.ts < _ts(hi)) if lo is None else ((t.ts >= _ts(lo)) & (t.ts < _ts(hi)))
                        for lo, hi in ranges])
    computed = period_amounts(t.filter(inside), bounds).cache()
    table = ibis.union(stored, computed, distinct=False)
    return Amounts(table, bounds, computed, False, replaced)


def revenue_at(amounts: ibis.Table, day: dt.date) -> ibis.Table:
    """As :func:`segflow.summaries.revenue_at_snapshots` at the one snapshot ``day`` (its
    boundaries, ``day`` and ``day - 365 days``, among those of ``amounts``): ``customer_id,
    snapshot_date, revenue_all_time, revenue_12m`` for every customer with a line before
    ``day``, by one conditional sum over the period amounts."""
    a = amounts.filter(amounts.period_end <= ibis.literal(day, "date"))
    year = ibis.literal(day - dt.timedelta(days=REVENUE_WINDOW_DAYS), "date")
    out = a.group_by("customer_id").agg(
        revenue_all_time=money_sum(a.amount),
        revenue_12m=money_sum(a.amount, where=a.period_end > year).fill_null(0.0),
    )
    return out.select("customer_id", snapshot_date=ibis.literal(day, "date"),
                      revenue_all_time=out.revenue_all_time, revenue_12m=out.revenue_12m)


def bucket_amounts(amounts: ibis.Table, keyed: ibis.Table, days: Sequence[dt.date]) -> ibis.Table:
    """:func:`segflow.summaries._cells.bucket_amounts` (``k, be, amount``: the net amount of
    the lines before the last of ``days`` by ``be``, the first day of ``days`` after them)
    from the period amounts (whose boundaries include ``days``): each period's amount goes to
    the first day of ``days`` at or after its end."""
    d = sorted(set(days))
    a = amounts.filter(amounts.period_end <= ibis.literal(d[-1], "date"))
    a = a.join(keyed, a.customer_id == keyed.customer_id)
    be = ibis.cases(*[(a.period_end <= ibis.literal(x, "date"), ibis.literal(x, "date")) for x in d])
    return a.group_by(k=a.k, be=be).agg(amount=money_sum(a.amount))
