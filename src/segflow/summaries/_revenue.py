"""Net revenue per customer at every snapshot, in one pass over the transactions (Ibis).

For each snapshot ``s`` and customer: ``revenue_all_time`` (every line with ``ts < s``) and
``revenue_12m`` (lines with ``s - 365 days <= ts < s``), returns netted (negative lines), in
the store's currency, anonymous lines (no customer id) left out. These are the definitions of
:func:`segflow.report._queries.segment_sizes` and of the transition matrices' revenue
(``revenue between s1 and s2 = all_time(s2) - all_time(s1)``).

How: the snapshot dates and the dates 365 days before them are the sorted *boundaries*
``B_0 < ... < B_m-1``; each transaction falls in the period ending at the first boundary after
its timestamp. Per customer and period the amounts are summed once (:func:`period_amounts`,
which a run also stores: :mod:`segflow.summaries._amounts`), a running sum over periods gives
the revenue before each boundary, and each boundary reads the running sum of the customer's
last period ending at or before it (no per-snapshot scan of the transactions); the 12-month
revenue is the difference of two such reads, both taken in one join and group-by.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import ibis
import pyarrow as pa
from ibis import _

from segflow.features import money_sum
from segflow.features._window import money

REVENUE_WINDOW_DAYS = 365


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def boundaries(dates: Sequence[dt.date]) -> list[dt.date]:
    """The sorted boundaries of the revenue at ``dates``: the dates and 365 days before them."""
    snaps = set(dates)
    return sorted(snaps | {d - dt.timedelta(days=REVENUE_WINDOW_DAYS) for d in snaps})


def period_amounts(transactions: ibis.Table, bounds: Sequence[dt.date]) -> ibis.Table:
    """``customer_id, period_end, amount``: per customer and boundary ``b`` of ``bounds``
    (sorted) the net amount (float64, summed exactly: :func:`segflow.features.money_sum`) of the customer's lines with ``ts`` before ``b`` and at
    or after the boundary before it (lines before the first boundary count at the first, lines
    at or after the last at none); one row per customer and period with lines, anonymous
    lines left out."""
    t = transactions.filter(transactions.customer_id.notnull(),
                            transactions.ts < ibis.timestamp(_midnight(bounds[-1])))
    end = ibis.cases(*[(t.ts < ibis.timestamp(_midnight(d)), ibis.literal(d, "date")) for d in bounds])
    return t.group_by(customer_id=t.customer_id, period_end=end).agg(amount=money_sum(t.amount))


def revenue_at_snapshots(transactions: ibis.Table, dates: Sequence[dt.date], *,
                         amounts: ibis.Table | None = None) -> ibis.Table:
    """One row per (customer with a line before the snapshot, snapshot): ``customer_id``,
    ``snapshot_date``, ``revenue_all_time``, ``revenue_12m`` (float64, currency units).

    Customers without any line before a snapshot have no row for it (their revenue is 0).
    ``amounts``: the :func:`period_amounts` of ``transactions`` at boundaries that include
    those of ``dates`` (:func:`boundaries`), when the caller has them.
    """
    snaps = sorted(set(dates))
    bounds = boundaries(snaps)
    per_bucket = period_amounts(transactions, bounds) if amounts is None else amounts
    w = ibis.window(group_by="customer_id", order_by="period_end")
    running = per_bucket.mutate(
        cum=money(per_bucket.amount).sum().over(
            ibis.window(group_by="customer_id", order_by="period_end", rows=(None, 0))).cast("float64"),
        next_end=_.period_end.lead().over(w).fill_null(ibis.date(9999, 12, 31)),
    )
    # revenue before boundary b is the running sum of the last period ending at or before b
    grid = ibis.memtable(pa.table({"g_b": pa.array(bounds, pa.date32())}))
    at = running.join(grid, (running.period_end <= grid.g_b) & (grid.g_b < running.next_end)).select(
        "customer_id", b="g_b", cum="cum"
    )
    # each boundary row serves the snapshots it is the "now" or the "a year before" of
    # (one join, one group-by: the running sums are computed once)
    snap_rows = [(d, d, True) for d in snaps]
    snap_rows += [(d, d - dt.timedelta(days=REVENUE_WINDOW_DAYS), False) for d in snaps]
    snap_idx = ibis.memtable(pa.table({
        "snapshot_date": pa.array([r[0] for r in snap_rows], pa.date32()),
        "s_b": pa.array([r[1] for r in snap_rows], pa.date32()),
        "is_now": pa.array([r[2] for r in snap_rows], pa.bool_()),
    }))
    j = at.join(snap_idx, at.b == snap_idx.s_b)
    out = j.group_by("customer_id", "snapshot_date").agg(
        revenue_all_time=j.cum.max(where=j.is_now),
        before_year=j.cum.max(where=~j.is_now),
    )
    out = out.filter(out.revenue_all_time.notnull())
    return out.select(
        "customer_id",
        "snapshot_date",
        "revenue_all_time",
        revenue_12m=out.revenue_all_time - out.before_year.fill_null(0.0),
    )
